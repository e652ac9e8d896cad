from desktop.conversation import Conversation
from engine.protocol import GenerationSettings, ImageInput


def img(i: str) -> ImageInput:
    return ImageInput(i, b"\x00" * 12, "rgb", (2, 2))


def test_requests_carry_the_whole_conversation_and_each_image_once() -> None:
    conv = Conversation()
    conv.attach_image(img("a"), "screen")
    first = conv.build_request(1, "Describe this.", GenerationSettings())
    assert first.new_image_ids == ("a",) and [i.image_id for i in first.images] == ["a"]
    assert first.history == ()
    conv.mark_sent(first)
    conv.record_exchange(first, "A login form.")
    assert conv.pending_image_ids == []

    follow = conv.build_request(2, "What is the title?", GenerationSettings())
    assert follow.new_image_ids == ()
    assert [t.text for t in follow.history] == ["Describe this.", "A login form."]
    assert follow.history[0].image_ids == ("a",)
    assert follow.images == ()  # the engine has it (and says ImagesNeeded if it lost it)

    conv.attach_image(img("b"), "photo.jpg")
    third = conv.build_request(3, "And this one?", GenerationSettings())
    assert third.new_image_ids == ("b",) and [i.image_id for i in third.images] == ["b"]
    assert third.conversation_id == follow.conversation_id == conv.id
    assert conv.model_images(["a"], None) == (img("a"),)  # what a resend carries


def test_a_failed_image_is_dropped_and_the_next_conversation_keeps_only_the_transcript() -> None:
    conv = Conversation()
    conv.attach_image(img("a"), "screen")
    conv.record_exchange(conv.build_request(1, "Describe this.", GenerationSettings()), "A login form.")
    conv.attach_image(img("b"), "huge.jpg")
    conv.drop_images(["b", "a"])  # only pending images go: "a" has an answer
    assert list(conv.images) == ["a"] and conv.pending_image_ids == []

    fresh = conv.next()
    assert fresh.id != conv.id and not fresh.images and not fresh.entries and not fresh.has_images
    assert fresh.last_answer == "A login form."
    fresh.attach_image(img("c"), "photo.jpg")
    fresh.record_exchange(fresh.build_request(2, "And this?", GenerationSettings()), "A cat.")
    assert fresh.build_request(3, "Colour?", GenerationSettings()).history[0].image_ids == ("c",)
    text = fresh.to_text()
    assert text.index("A login form.") < text.index("New conversation") < text.index("A cat.")


def test_transcript_text_and_save(tmp_path) -> None:
    conv = Conversation()
    assert conv.to_text() == "" and conv.last_answer is None
    conv.attach_image(img("a"), "screen")
    req = conv.build_request(1, "Describe this.", GenerationSettings())
    conv.record_exchange(req, "A cat", cancelled=True)
    text = conv.to_text()
    assert "Image: screen" in text and "You: Describe this." in text and "Lumen (stopped): A cat" in text
    conv.save_text(tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_text() == text
    assert conv.last_answer == "A cat"


def test_the_model_sized_copy_is_sent_only_to_a_model_of_that_size() -> None:
    conv = Conversation()
    full = ImageInput("a", b"\x00" * 48, "rgb", (4, 4))
    conv.attach_image(full, "screen", model_input=img("a"))  # a 2x2 view for a 2-pixel model
    conv.attach_image(img("b"), "photo.jpg")  # a photo: no model-sized copy
    assert conv.build_request(1, "q", GenerationSettings(), image_size=2).images == (img("a"), img("b"))
    # Model not ready yet, or a model with another input size: the full image goes, never a wrong one.
    assert conv.build_request(1, "q", GenerationSettings()).images == (full, img("b"))
    assert conv.build_request(1, "q", GenerationSettings(), image_size=3).images == (full, img("b"))
    assert conv.images["a"] is full  # what OCR and the transcript use
