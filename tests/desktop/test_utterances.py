from desktop.utterances import SentenceSplitter


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def feed_all(splitter: SentenceSplitter, deltas: list[str]) -> list[str]:
    out: list[str] = []
    for d in deltas:
        out += splitter.feed(d)
    return out + splitter.finish()


def test_streamed_words_become_sentences_only_when_complete() -> None:
    s = SentenceSplitter()
    assert s.feed("A dialog ") == []
    assert s.feed("asks to save.") == []  # no following space yet: "save.txt" could follow
    assert s.feed(" The") == ["A dialog asks to save."]
    assert s.finish() == ["The"]


def test_abbreviations_decimals_and_initials_do_not_split() -> None:
    text = "Dr. Smith paid 3.50 dollars, e.g. for U.S. stamps. Then J. Doe left! Done? Yes\nNext line"
    out = feed_all(SentenceSplitter(), [c for c in text])  # character by character
    assert out == [
        "Dr. Smith paid 3.50 dollars, e.g. for U.S. stamps.",
        "Then J. Doe left!",
        "Done?",
        "Yes",
        "Next line",
    ]


def test_same_result_whatever_the_chunking() -> None:
    text = "First sentence here. Second one, with a comma. Third!"
    whole = feed_all(SentenceSplitter(), [text])
    words = feed_all(SentenceSplitter(), [w + " " for w in text.split(" ")])
    assert whole == words == ["First sentence here.", "Second one, with a comma.", "Third!"]


def test_max_wait_flushes_at_a_clause_and_never_mid_phrase() -> None:
    clock = Clock()
    s = SentenceSplitter(max_wait=1.0, clock=clock)
    assert s.feed("On the left there is a long list of files, and on the right a prev") == []
    clock.t = 0.5
    assert s.flush_due() == []  # not yet due
    clock.t = 1.01
    assert s.flush_due() == ["On the left there is a long list of files,"]
    assert s.pending == "and on the right a prev"
    clock.t = 2.2
    assert s.flush_due() == [] and s.seconds_until_due() is None  # a short phrase waits for its sentence
    assert s.feed("iew pane. ") == ["and on the right a preview pane."]


def test_a_slowly_streamed_sentence_is_spoken_whole_not_in_fragments() -> None:
    """One word every 0.8 s (a slow processor) against max_wait 1.5 s: the timer runs throughout."""
    clock = Clock()
    s = SentenceSplitter(max_wait=1.5, clock=clock)
    spoken: list[str] = []
    for word in "A green square on the left. A red circle on the right.".split(" "):
        spoken += s.feed(word + " ")
        for _ in range(8):
            clock.t += 0.1
            spoken += s.flush_due()
    assert spoken + s.finish() == ["A green square on the left.", "A red circle on the right."]


def test_a_long_sentence_without_clauses_is_cut_as_a_long_phrase() -> None:
    clock = Clock()
    s = SentenceSplitter(max_wait=1.0, clock=clock)
    words = "a window with a toolbar and a large picture of a mountain lake under a blue sky in summer".split()
    spoken: list[str] = []
    for word in words:
        spoken += s.feed(word + " ")
        clock.t += 0.5
        spoken += s.flush_due()
    assert spoken, "a long phrase starts speaking before the sentence ends"
    assert all(len(chunk.split()) >= 8 for chunk in spoken), spoken  # a phrase, not two or three words
    assert " ".join(spoken + s.finish()).split() == words


def test_very_long_run_without_punctuation_is_cut_at_words() -> None:
    s = SentenceSplitter(max_chars=40)
    out = s.feed("word " * 20)
    assert out and all(len(chunk) <= 40 for chunk in out)
    assert all(not chunk.endswith("wor") for chunk in out)
    assert " ".join(out + s.finish()).split() == ["word"] * 20
