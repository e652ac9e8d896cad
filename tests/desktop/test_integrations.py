"""Screen text and voice questions wired into the app (scripted engine answering ReadText/Transcribe)."""

from __future__ import annotations

import dataclasses

import pytest

from desktop import messages
from engine.protocol import Describe, ReadText, Transcribe
from tests.fakes import FakeCapture


def test_read_the_text_captures_the_screen_as_it_is_now_and_speaks_the_lines_in_order(lumen, qtbot) -> None:  # noqa: ANN001
    def read_texts() -> list[ReadText]:
        return [r for r in lumen.scripted.requests if isinstance(r, ReadText) and not r.background]

    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.controller.handle_action("describe_screen")
    described = lumen.controller.conversation.images[lumen.controller.conversation.last_image_id]
    lumen.controller.grabber.image = FakeCapture(size=(200, 100)).image  # the screen has changed since
    lumen.controller.handle_action("read_text")
    qtbot.waitUntil(lambda: "Total due: 120 euros" in lumen.speaker.texts, timeout=5000)
    said = lumen.speaker.texts
    assert said[said.index(messages.READING_TEXT) + 1:] == ["2 lines of text", "Invoice 2041", "Total due: 120 euros"]
    (read,) = read_texts()
    assert read.image.size == (200, 100) and read.image.data != described.data  # not the last image
    assert len(lumen.controller.grabber.grabs) == 2
    assert read.image.image_id not in lumen.controller.conversation.images  # not part of the conversation

    lumen.controller.new_conversation()  # no image at all: it still reads the screen
    lumen.controller.handle_action("read_text")
    qtbot.waitUntil(lambda: len(read_texts()) == 2, timeout=5000)


def test_new_images_are_read_after_the_describe_and_ground_follow_ups(lumen, qtbot) -> None:  # noqa: ANN001
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.controller.handle_action("describe_screen")
    def kinds() -> list[str]:  # as the engine took them (the ReadText may still be on its way)
        return [type(r).__name__ for r in lumen.scripted.requests if isinstance(r, (Describe, ReadText))]

    qtbot.waitUntil(lambda: len(kinds()) == 2, timeout=5000)
    assert kinds() == ["Describe", "ReadText"]  # OCR never delays the first answer
    first = next(r for r in lumen.scripted.requests if isinstance(r, Describe))
    assert first.context == ""
    feature = next(f for f in lumen.extensions if type(f).__name__ == "ScreenTextFeature")
    image_id = lumen.controller.conversation.last_image_id
    qtbot.waitUntil(lambda: feature.text.lines_for(image_id) is not None, timeout=5000)  # OCR arrived
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.controller.ask("What is the total?")
    follow = [r for r in lumen.scripted.requests if isinstance(r, Describe)][-1]
    assert "Total due: 120 euros" in follow.context
    lumen.apply_settings(dataclasses.replace(lumen.settings, ocr=False))
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.controller.ask("And the invoice number?")
    assert [r for r in lumen.scripted.requests if isinstance(r, Describe)][-1].context == ""


def test_a_spoken_question_is_transcribed_and_asked(lumen, qtbot) -> None:  # noqa: ANN001
    voice = next(f for f in lumen.extensions if type(f).__name__ == "VoiceFeature")
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.controller.handle_action("describe_screen")
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        voice.recorder.recorded.emit(b"RIFF fake wav")  # what the recorder emits after release
    assert any(isinstance(r, Transcribe) for r in lumen.scripted.requests)
    assert messages.HEARD.format(text="What is the total?") in lumen.speaker.texts
    assert lumen.controller.conversation.entries[-2].turn.text == "What is the total?"
    voice.recorder.failed.emit("silence")
    assert lumen.speaker.texts[-1] == messages.VOICE_FAILURES["silence"]
