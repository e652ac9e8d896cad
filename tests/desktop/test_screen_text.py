"""desktop.screen_text: 'read the text' utterances and the grounding switch."""

from __future__ import annotations

import pytest

from desktop import messages
from desktop.screen_text import Purpose, ScreenText, reading_chunks, reading_summary
from engine.perception import ocr
from engine.protocol import TextLine, TextRead
import tests.native_preload  # noqa: F401 - see its docstring
from tests import ocr_screens


def _line(text: str, left: int, top: int, right: int, bottom: int) -> TextLine:
    return TextLine(text, (left, top, right, bottom), 0.99)


@pytest.mark.system
def test_read_the_text_of_a_real_dialog_in_reading_order() -> None:
    try:
        lines = ocr.read_text(ocr_screens.save_dialog().image)
    except ocr.OcrUnavailable as exc:
        pytest.skip(str(exc))
    assert reading_chunks(lines) == [
        "File Edit View Help",
        "Save changes to document.txt?",
        "Your changes will be lost if you don't save them.",
        "Don't Save, Cancel, Save",
        "Battery 87%, Wi-Fi: Connected, 12:45 PM",
    ]
    assert reading_summary(lines) == "5 lines of text"


def test_long_rows_are_cut_at_sentences_then_words() -> None:
    text = "First sentence is here. " * 10 + "x" * 30 + " " + "word " * 60
    chunks = reading_chunks([_line(text, 0, 0, 3000, 16)], max_chars=80)
    assert all(0 < len(chunk) <= 80 for chunk in chunks)
    assert " ".join(chunks).split() == text.split()
    assert chunks[0] == "First sentence is here. First sentence is here. First sentence is here."


def test_summary_counts_rows() -> None:
    assert reading_summary(()) == messages.SCREEN_TEXT_NONE
    assert reading_summary([_line("OK", 0, 0, 20, 10)]) == messages.SCREEN_TEXT_ONE_LINE


def test_grounding_context_follows_the_switch_and_the_latest_read_image() -> None:
    screen = ScreenText(grounding=True)
    assert screen.needs_ocr("img1")
    screen.requested(7, "img1", Purpose.GROUND)
    assert not screen.needs_ocr("img1")  # already asked for
    assert screen.context_for(["img1"]) == ""  # not read yet: ask without grounding
    result = screen.on_text_read(TextRead(7, (_line("Error: disk full", 10, 10, 150, 26),
                                              _line("OK", 160, 10, 180, 26))))
    assert result is not None and result.image_id == "img1" and result.purpose is Purpose.GROUND
    assert screen.context_for(["img1"]) == "Error: disk full | OK"
    assert screen.context_for(["img1", "img2"]) == "Error: disk full | OK"  # follow-ups keep it
    screen.requested(8, "img2", Purpose.READ)
    screen.on_text_read(TextRead(8, ()))
    assert screen.context_for(["img1", "img2"]) == ""  # the newest image has no text: no stale text
    assert screen.toggle_grounding() == messages.GROUNDING_OFF
    assert screen.context_for(["img1"]) == "" and not screen.needs_ocr("img3")
    assert screen.toggle_grounding() == messages.GROUNDING_ON


def test_unknown_results_and_failures_are_ignored_after_forget() -> None:
    screen = ScreenText()
    screen.requested(1, "img1", Purpose.READ)
    screen.forget()
    assert screen.on_text_read(TextRead(1, (_line("late", 0, 0, 10, 10),))) is None
    assert screen.lines_for("img1") is None
    screen.requested(2, "img2", Purpose.GROUND)
    failed = screen.on_failed(2)
    assert failed is not None and failed.lines == () and screen.needs_ocr("img2")
    assert screen.on_failed(None) is None


def test_grounding_reaches_the_engine_through_ask(qtbot) -> None:
    from engine.protocol import Describe, ImageInput
    from tests.desktop.conftest import make_rig
    from tests.fakes import ScriptedEngine

    rig = make_rig(ScriptedEngine())
    try:
        screen = ScreenText()
        rig.controller.conversation.attach_image(ImageInput("img1", b"\x89PNG"), "screen")
        screen.requested(3, "img1", Purpose.GROUND)
        screen.on_text_read(TextRead(3, (_line("Printer out of paper", 0, 0, 200, 16),)))
        with qtbot.waitSignal(rig.controller.answer_finished, timeout=5000):
            assert rig.controller.ask("What does the dialog say?", screen.context_for(["img1"]))
        sent = [r for r in rig.engine.requests if isinstance(r, Describe)]
        assert sent[-1].context == "Printer out of paper"
        assert sent[-1].question == "What does the dialog say?"
    finally:
        rig.client.shutdown()
