"""The controller with the real EngineClient over a pipe to a scripted engine loop."""

from __future__ import annotations

import gc
import weakref

import pytest

from desktop import messages
from desktop.speech_output.speaker import Priority
from engine.protocol import Describe, ErrorKind, Finished
from tests.fakes import FakeCapture, ScriptedEngine

SENTENCES = ["A window with a button.", "The button says OK.", "Nothing else is visible."]


def finished(rig, qtbot, action=None, timeout=5000):  # noqa: ANN001
    with qtbot.waitSignal(rig.controller.answer_finished, timeout=timeout) as blocker:
        if action:
            action()
    return blocker.args[0]


def test_hotkey_to_spoken_sentences_while_streaming(rig, qtbot) -> None:  # noqa: ANN001
    order: list[str] = []
    rig.client.event.connect(lambda e: order.append(type(e).__name__))
    rig.speaker.started.connect(lambda t: order.append(f"say:{t}"))
    answer = finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))

    assert answer.strip() == ScriptedEngine().answer
    assert rig.speaker.texts == [messages.DESCRIBING_SCREEN, *SENTENCES, messages.DONE]
    assert rig.speaker.spoken[0][1] is Priority.NOW
    assert order.index(f"say:{SENTENCES[0]}") < order.index("Finished")  # spoken before the end
    assert rig.earcons.played[0] == "ack" and rig.earcons.played[-1] == "done"
    assert rig.grabber.grabs == [(None, "screen")]
    request = next(r for r in rig.engine.requests if isinstance(r, Describe))
    assert request.images[0].encoding == "rgb" and request.images[0].size == (320, 200)
    assert len(rig.controller.conversation.entries) == 2
    t = rig.controller.timeline
    assert t["hotkey"] <= t["ack"] <= t["captured"] <= t["sent"] <= t["first_delta"] <= t["first_sentence"]
    assert t["ack"] - t["hotkey"] < 0.1


def test_follow_up_reuses_the_cached_image(rig, qtbot) -> None:  # noqa: ANN001
    """The app sends an image's bytes once per engine; a follow-up names it and sends nothing again
    (what the app sends, not the scripted engine's cache counts, which hold either way)."""
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    finished(rig, qtbot, lambda: rig.controller.ask("What does the button say?"))
    first, follow = [r for r in rig.engine.requests if isinstance(r, Describe)]
    (image_id,) = first.new_image_ids
    assert [i.image_id for i in first.images] == [image_id]
    assert follow.images == () and follow.new_image_ids == ()
    assert [(t.role, t.image_ids) for t in follow.history] == [("user", (image_id,)), ("assistant", ())]
    assert follow.conversation_id == first.conversation_id
    assert len(rig.controller.conversation.entries) == 4


def test_stop_cancels_generation_and_speech(new_rig, qtbot) -> None:  # noqa: ANN001
    rig = new_rig(ScriptedEngine(delay=0.1))
    assert rig.controller.doing() == messages.DOING_NOTHING
    with qtbot.waitSignal(rig.controller.answer_started, timeout=5000):
        rig.controller.handle_action("describe_screen")
    assert rig.controller.doing() == messages.DOING_WAITING
    qtbot.waitUntil(lambda: rig.controller._answer != "", timeout=5000)
    qtbot.waitUntil(lambda: len(rig.speaker.texts) >= 2, timeout=5000)  # the first chunk is spoken
    spoken = len(rig.speaker.texts) - 1  # minus the acknowledgement
    rig.controller.handle_action("status")  # "what are you doing?"
    assert rig.speaker.texts[-1] == messages.DOING_ANSWERING.format(count=spoken)
    stops_before = rig.speaker.stops
    with qtbot.waitSignal(rig.client.event, timeout=5000,
                          check_params_cb=lambda e: isinstance(e, Finished) and e.cancelled):
        rig.controller.handle_action("stop")
    assert rig.speaker.stops > stops_before
    assert rig.earcons.played[-1] == "stopped"
    assert rig.controller.state.value == "idle"
    qtbot.wait(300)  # no more speech after the stop
    spoken_after_stop = rig.speaker.texts
    assert not any(s in spoken_after_stop for s in SENTENCES[1:])
    entry = rig.controller.conversation.entries[-1]
    assert entry.cancelled and entry.turn.text  # the partial answer is kept, marked stopped


def test_engine_death_mid_answer_restarts_and_keeps_the_conversation(new_rig, qtbot) -> None:  # noqa: ANN001
    engine = ScriptedEngine()
    rig = new_rig(engine)
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    before = list(rig.controller.conversation.entries)
    engine.die_after_deltas = 2
    with qtbot.waitSignal(rig.client.restarted, timeout=5000):
        rig.controller.ask("What else?")
    assert rig.speaker.texts[-1] == messages.ENGINE_RESTARTED
    assert rig.controller.conversation.entries[: len(before)] == before
    engine.die_after_deltas = None
    finished(rig, qtbot, lambda: rig.controller.ask("What else?"))
    assert rig.controller.conversation.last_answer == engine.answer
    asked, resent = [r for r in engine.requests if isinstance(r, Describe)][-2:]  # the new engine has no image
    assert asked.images == () and [i.image_id for i in resent.images] == [before[0].turn.image_ids[0]]
    assert resent.request_id == asked.request_id  # the same request again, after ImagesNeeded


def test_black_capture_is_refused_with_a_reason(new_rig, qtbot) -> None:  # noqa: ANN001
    rig = new_rig(grabber=FakeCapture(black=True))
    rig.controller.handle_action("describe_screen")
    qtbot.waitUntil(lambda: messages.CAPTURE_BLACK in rig.speaker.texts, timeout=5000)
    assert not any(isinstance(r, Describe) for r in rig.engine.requests)
    assert rig.earcons.played[-1] == "error" and not rig.controller.conversation.has_images


def test_engine_failure_is_spoken_and_the_app_stays_usable(new_rig, qtbot) -> None:  # noqa: ANN001
    engine = ScriptedEngine(fail_with=ErrorKind.OUT_OF_MEMORY)
    rig = new_rig(engine)
    rig.controller.handle_action("describe_screen")
    text = messages.error_text(ErrorKind.OUT_OF_MEMORY)
    qtbot.waitUntil(lambda: text in rig.speaker.texts, timeout=5000)
    assert rig.controller.state.value == "idle"
    engine.fail_with = None
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))


def test_a_failed_photo_is_dropped_and_the_next_question_is_about_the_one_that_worked(new_rig, qtbot) -> None:  # noqa: ANN001
    from desktop.image_input import Photo, new_image_id
    from engine.protocol import ImageInput

    engine = ScriptedEngine()
    rig = new_rig(engine)
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    worked = rig.controller.conversation
    engine.fail_with = ErrorKind.OUT_OF_MEMORY  # e.g. a photo too large for the memory left
    photo = Photo(ImageInput(new_image_id(), b"a huge photo"), "huge.jpg", (9000, 7000))
    rig.controller.open_photo(lambda side: photo)
    qtbot.waitUntil(lambda: messages.error_text(ErrorKind.OUT_OF_MEMORY) in rig.speaker.texts, timeout=5000)
    assert rig.controller.conversation is worked and photo.image.image_id not in worked.images
    engine.fail_with = None
    finished(rig, qtbot, lambda: rig.controller.ask("What colour is the button?"))
    follow = [r for r in engine.requests if isinstance(r, Describe)][-1]
    assert follow.new_image_ids == () and follow.images == ()  # nothing of the failed photo
    assert follow.conversation_id == worked.id and len(worked.entries) == 4


def test_each_capture_starts_a_new_conversation_and_follow_ups_stay_in_it(rig, qtbot) -> None:  # noqa: ANN001
    from engine.protocol import ForgetConversation

    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    first = rig.controller.conversation
    finished(rig, qtbot, lambda: rig.controller.ask("What does the button say?"))
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_window"))
    second = rig.controller.conversation
    assert second.id != first.id and len(second.images) == 1 and len(second.entries) == 2
    request = [r for r in rig.engine.requests if isinstance(r, Describe)][-1]
    assert request.history == () and request.conversation_id == second.id  # one image per chat
    assert not second.images.keys() & first.images.keys()
    text = second.to_text()  # the earlier conversation stays in the transcript
    assert text.count("Image: ") == 2 and "You: What does the button say?" in text and "New conversation" in text
    qtbot.waitUntil(lambda: ForgetConversation(first.id) in rig.engine.requests, timeout=3000)  # its cache freed
    finished(rig, qtbot, lambda: rig.controller.ask("And now?"))
    assert rig.controller.conversation is second and len(second.entries) == 4
    gone = weakref.ref(first)  # nothing holds the earlier conversation's images any more
    del first
    gc.collect()
    assert gone() is None


def test_screen_reader_output_speaks_and_brailles_through_the_reader_instead_of_the_voice(new_rig, qtbot) -> None:  # noqa: ANN001
    from desktop.settings import SpeechOutput

    rig = new_rig(speech_output=SpeechOutput.AUTO)
    rig.reader.active = True
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    assert rig.speaker.texts == []
    assert rig.reader.spoken[0] == (messages.DESCRIBING_SCREEN, True)  # the acknowledgement interrupts
    assert [t for t, a in rig.reader.spoken[1:4]] == SENTENCES
    assert not any(a for _, a in rig.reader.spoken[1:4])  # answers are polite
    assert rig.reader.brailled[:4] == [messages.DESCRIBING_SCREEN, *SENTENCES]  # every sentence as it streams
    assert rig.reader.qt_announced == []


def test_stop_cancels_the_readers_speech_too(new_rig, qtbot) -> None:  # noqa: ANN001
    from desktop.settings import SpeechOutput

    rig = new_rig(speech_output=SpeechOutput.SCREEN_READER)
    rig.reader.active = True
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    cancels = rig.reader.cancels
    rig.controller.handle_action("stop")
    assert rig.reader.cancels == cancels + 1
    assert rig.speaker.stops >= 1


@pytest.mark.parametrize("mode", ["screen_reader", "auto"])
def test_never_silent_without_a_running_reader_or_when_it_fails(new_rig, qtbot, mode) -> None:  # noqa: ANN001
    """The accessibility flag can be on with no reader running, and a reader can quit or refuse:
    either way the own voice says everything (and the Qt announcement still goes out)."""
    from desktop.settings import SpeechOutput

    rig = new_rig(speech_output=SpeechOutput(mode))
    rig.controller.notify("Model ready.")
    assert rig.speaker.texts == ["Model ready."] and rig.reader.qt_announced == [("Model ready.", False)]
    rig.reader.active, rig.reader.fail = True, True
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    assert rig.speaker.texts[1:5] == [messages.DESCRIBING_SCREEN, *SENTENCES]
    assert rig.reader.spoken == [] and rig.reader.forgotten >= 4


def test_both_speaks_with_the_voice_and_the_reader(new_rig, qtbot) -> None:  # noqa: ANN001
    from desktop.settings import SpeechOutput

    rig = new_rig(speech_output=SpeechOutput.BOTH)
    rig.reader.active = True
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    assert rig.speaker.texts[:4] == [t for t, _ in rig.reader.spoken[:4]] == [messages.DESCRIBING_SCREEN, *SENTENCES]


def test_model_loading_progress_is_announced_in_quarters(new_rig, qtbot) -> None:  # noqa: ANN001
    rig = new_rig()  # no model set up: the bundled demo model
    assert rig.controller.load_model()
    qtbot.waitUntil(lambda: any(t.startswith("Model ready") for t in rig.speaker.texts), timeout=5000)
    said = rig.speaker.texts
    assert said[0] == messages.MODEL_LOADING
    assert said[-1].startswith("Model ready. This is the small demo model: it only knows coloured shapes")
    assert "Loading the model, 50 percent" in said and "Loading the model, 100 percent" in said


def test_ask_without_image_and_empty_question_explain(rig) -> None:  # noqa: ANN001
    assert not rig.controller.ask("What is this?")
    assert rig.speaker.texts[-1] == messages.NO_IMAGE_YET
    assert not rig.controller.ask("   ")
    assert rig.speaker.texts[-1] == messages.EMPTY_QUESTION
    rig.controller.handle_action("recall")
    assert rig.speaker.texts[-1] == messages.NO_ANSWER_YET


def test_region_sizes_are_said_in_points_on_macos(monkeypatch) -> None:  # noqa: ANN001
    """macOS rectangles are in points (half the pixels each way on Retina): saying "pixels" there was wrong."""
    import sys

    from desktop.capture import Rect
    from desktop.region import RegionNavigator

    navigator = RegionNavigator(Rect(0, 0, 1440, 900))
    navigator.key("9")
    assert navigator.describe_position(9) == "top right, 480 by 300 pixels"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert navigator.describe_position(9) == "top right, 480 by 300 points"


def test_command_layer_and_region_drill_down(rig, qtbot) -> None:  # noqa: ANN001
    modal: list[bool] = []
    rig.controller.modal_requested.connect(modal.append)
    rig.controller.handle_action("command")
    assert modal == [True] and rig.speaker.texts[-1] == messages.COMMAND_LAYER
    rig.controller.keys.key("r")  # layer -> region
    assert rig.controller.keys.in_region and modal[-1] is True
    rig.controller.keys.key("9")
    assert rig.speaker.texts[-1] == "top right, 640 by 360 pixels"
    rig.controller.keys.key("5")
    assert rig.speaker.texts[-1] == "centre, 213 by 120 pixels"
    rig.controller.keys.key("backspace")
    assert rig.speaker.texts[-1].endswith("640 by 360 pixels")
    finished(rig, qtbot, lambda: rig.controller.keys.key("enter"))
    assert modal[-1] is False and not rig.controller.keys.in_region
    rect, label = rig.grabber.grabs[-1]
    assert (rect.left, rect.top, rect.width, rect.height, label) == (1280, 0, 640, 360, "region")


def test_new_conversation_forgets_engine_cache(rig, qtbot) -> None:  # noqa: ANN001
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    old = rig.controller.conversation.id
    rig.controller.new_conversation()
    assert rig.controller.conversation.id != old and not rig.controller.conversation.entries
    qtbot.waitUntil(lambda: any(getattr(r, "conversation_id", None) == old and type(r).__name__ ==
                                "ForgetConversation" for r in rig.engine.requests), timeout=3000)


def test_ask_hotkey_with_no_image_captures_first_then_asks_the_typed_question(rig, qtbot) -> None:  # noqa: ANN001
    with qtbot.waitSignal(rig.controller.question_requested, timeout=5000):
        rig.controller.handle_action("ask")
    assert rig.grabber.grabs == [(None, "screen")]
    assert not any(isinstance(r, Describe) for r in rig.engine.requests)  # nothing asked yet
    assert rig.speaker.texts == [messages.CAPTURING_SCREEN, messages.ASK_PROMPT]  # nothing is described yet
    finished(rig, qtbot, lambda: rig.controller.ask("What does the dialog say?"))
    request = next(r for r in rig.engine.requests if isinstance(r, Describe))
    assert request.question == "What does the dialog say?" and len(request.new_image_ids) == 1


def test_window_not_found_falls_back_to_the_screen_and_says_so(rig, qtbot, monkeypatch) -> None:  # noqa: ANN001
    from desktop import capture

    monkeypatch.setattr(capture, "active_window_rect", lambda: None)  # e.g. the desktop itself has focus
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_window"))
    assert rig.grabber.grabs == [(None, "screen")]
    assert messages.NO_ACTIVE_WINDOW in rig.speaker.texts


def test_stopped_nothing_to_stop_and_done_reach_the_screen_reader(new_rig, qtbot) -> None:  # noqa: ANN001
    from desktop.settings import SpeechOutput

    rig = new_rig(ScriptedEngine(delay=0.1), speech_output=SpeechOutput.SCREEN_READER)
    rig.reader.active = True
    with qtbot.waitSignal(rig.controller.answer_started, timeout=5000):
        rig.controller.handle_action("describe_screen")
    rig.controller.handle_action("stop")
    assert rig.reader.spoken[-1] == (messages.STOPPED, True)
    rig.controller.handle_action("stop")
    assert rig.reader.spoken[-1] == (messages.NOTHING_TO_STOP, True)
    rig.engine.delay = 0.01
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    heard = [t for t, _ in rig.reader.spoken]
    assert heard[-4:] == [*SENTENCES, messages.DONE]  # after the last sentence
    assert rig.reader.spoken[-1][1] is False  # polite: it does not cut the answer short
    assert rig.speaker.texts == []


def test_stop_while_the_reader_still_reads_the_answer_stops_it(new_rig, qtbot) -> None:  # noqa: ANN001
    """The answer is all sent to the reader, which is still reading it: Stop cancels the reader and says
    Stopped; a second Stop has nothing left to stop."""
    from desktop.settings import SpeechOutput

    rig = new_rig(ScriptedEngine(delay=0.01), speech_output=SpeechOutput.SCREEN_READER)
    rig.reader.active = True
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    assert [t for t, _ in rig.reader.spoken][-4:] == [*SENTENCES, messages.DONE]
    cancels = rig.reader.cancels
    rig.controller.handle_action("stop")
    assert rig.reader.spoken[-1] == (messages.STOPPED, True) and rig.reader.cancels == cancels + 1
    rig.controller.handle_action("stop")
    assert rig.reader.spoken[-1] == (messages.NOTHING_TO_STOP, True)


def test_recall_says_the_last_answer_again_in_voice_mode(rig, qtbot) -> None:  # noqa: ANN001
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
    rig.speaker.spoken.clear()
    with qtbot.waitSignal(rig.controller.transcript_requested, timeout=1000) as opened:
        rig.controller.handle_action("recall")
    assert opened.args == [True]  # the transcript opens at the last answer, too
    assert rig.speaker.texts == SENTENCES
    assert rig.speaker.spoken[0][1] is Priority.NOW


def test_a_slow_engine_is_still_spoken_in_whole_sentences(new_rig, qtbot) -> None:  # noqa: ANN001
    rig = new_rig(ScriptedEngine(delay=0.2))  # a word every 0.2 s, the flush timer at 0.3 s
    finished(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"), timeout=10000)
    assert rig.speaker.texts == [messages.DESCRIBING_SCREEN, *SENTENCES, messages.DONE]
