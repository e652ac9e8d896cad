"""engine.perception.ocr: real OCR of synthetic screenshots (PIL and Qt), reading order, grounding text."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image, ImageDraw

from engine.minigpt4 import prompts
from engine.perception import ocr
from engine.perception.reading_order import format_grounding, reading_order
from engine.protocol import Describe, TextLine
import tests.native_preload  # noqa: F401 - see its docstring
from tests import ocr_screens

BACKENDS = [
    pytest.param("rapidocr"),
    pytest.param("tesseract"),
]


@pytest.fixture(scope="session")
def backend_names() -> tuple[str, ...]:
    return ocr.available_backends()  # creates (loads) each backend once for the session


def _backend(name: str, available: tuple[str, ...]) -> str:
    if name not in available:
        pytest.skip(f"{name} is not installed here")
    return name


def _line(text: str, left: int, top: int, right: int, bottom: int) -> TextLine:
    return TextLine(text, (left, top, right, bottom), 0.99)


# ---------------------------------------------------------------- real OCR


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("make", [ocr_screens.save_dialog, ocr_screens.settings_form,
                                  ocr_screens.two_columns, ocr_screens.dark_toolbar])
def test_reads_pil_screenshots_exactly_in_reading_order(make, name, backend_names) -> None:
    screen = make()
    lines = ocr.read_text(screen.image, backend=_backend(name, backend_names))
    assert [line.text for line in lines] == list(screen.items)
    assert all(0.0 < line.confidence <= 1.0 for line in lines)
    width, height = screen.image.size
    assert all(0 <= l.box[0] < l.box[2] <= width + 2 and 0 <= l.box[1] < l.box[3] <= height + 2 for l in lines)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("make", [ocr_screens.qt_dialog, ocr_screens.qt_settings_window])
def test_reads_qt_widgets_grabbed_offscreen(qapp, make, name, backend_names) -> None:
    screen = make()
    lines = ocr.read_text(screen.image, backend=_backend(name, backend_names))
    got = " ".join(line.text for line in lines)
    assert ocr_screens.char_accuracy(got, screen.text) >= 0.97, got
    found = [line.text for line in lines]
    assert [item for item in screen.items if item not in found] == []


def test_default_backend_is_rapidocr_and_is_reused(backend_names) -> None:
    if "rapidocr" not in backend_names:
        pytest.skip("rapidocr is not installed here")
    assert ocr.get_backend().name == "rapidocr"
    assert ocr.get_backend() is ocr.get_backend("rapidocr")


def test_rapidocr_uses_the_models_in_its_wheel(backend_names) -> None:
    if "rapidocr" not in backend_names:
        pytest.skip("rapidocr is not installed here")
    import rapidocr

    cfg = ocr.get_backend("rapidocr")._engine.cfg
    for section in ("Det", "Rec", "Cls"):
        path = str(cfg[section].model_path)
        assert path.startswith(str(ocr.Path(rapidocr.__file__).parent)), path


def test_image_without_text_gives_no_lines(backend_names) -> None:
    assert ocr.read_text(Image.new("RGB", (400, 200), "white")) == ()


def test_transparent_and_grey_images_are_read(backend_names) -> None:
    rgba = Image.new("RGBA", (360, 60), (0, 0, 0, 0))  # transparent black: would read as a black image
    ImageDraw.Draw(rgba).text((10, 15), "Transparent label", fill=(0, 0, 0, 255),
                              font=ocr_screens._font(16))
    assert [line.text for line in ocr.read_text(rgba)] == ["Transparent label"]
    grey = ocr_screens.save_dialog().image.convert("L")
    assert "Save changes to document.txt?" in [line.text for line in ocr.read_text(grey)]


# ---------------------------------------------------------------- unavailable backends


def test_no_backend_at_all_raises_ocr_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "_backends", {})
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # "not installed": import raises ImportError
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    with pytest.raises(ocr.OcrUnavailable, match="rapidocr.*tesseract"):
        ocr.read_text(Image.new("RGB", (50, 50), "white"))


def test_tesseract_without_the_language_or_program_is_unavailable(backend_names) -> None:
    with pytest.raises(ocr.OcrUnavailable, match="not installed|does not run"):
        ocr.TesseractBackend(executable="/nonexistent/tesseract")
    if "tesseract" in backend_names:
        with pytest.raises(ocr.OcrUnavailable, match="language data"):
            ocr.TesseractBackend(language="zzz")


def test_a_crashing_tesseract_is_ocr_failed(tmp_path) -> None:
    fake = tmp_path / "tesseract"
    fake.write_text('#!/bin/sh\nif [ "$1" = "--list-langs" ]; then echo "List of languages:"; echo eng; exit 0; fi\n'
                    'echo "Segmentation fault" >&2\nexit 139\n')
    fake.chmod(0o755)
    with pytest.raises(ocr.OcrFailed, match="139"):
        ocr.TesseractBackend(executable=str(fake)).read(Image.new("RGB", (40, 20), "white"))


def test_unknown_backend_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown OCR backend"):
        ocr.get_backend("paddle")


def test_importing_ocr_loads_neither_torch_nor_an_ocr_library() -> None:
    code = ("import sys, engine.perception.ocr; bad = [m for m in ('torch', 'rapidocr', 'onnxruntime', 'cv2') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ocr_screens.Path(__file__).parents[2])


# ---------------------------------------------------------------- reading order (pure)


def test_rows_read_across_and_top_to_bottom() -> None:
    form = [_line("Email:", 20, 90, 70, 105), _line("Name:", 20, 55, 65, 70),
            _line("ada@example.org", 180, 90, 300, 105), _line("Ada Lovelace", 180, 55, 280, 70)]
    assert [l.text for l in reading_order(form)] == ["Name:", "Ada Lovelace", "Email:", "ada@example.org"]


def test_slightly_misaligned_items_of_one_row_stay_on_that_row() -> None:
    buttons = [_line("Save", 517, 271, 554, 287), _line("Cancel", 297, 268, 347, 287),
               _line("Don't Save", 58, 271, 133, 286)]
    assert [l.text for l in reading_order(buttons)] == ["Don't Save", "Cancel", "Save"]


def test_prose_columns_are_read_one_after_the_other() -> None:
    left = [_line(f"left column line {i} with several words", 20, 50 + 22 * i, 300, 67 + 22 * i) for i in range(3)]
    right = [_line(f"right column line {i} with more words", 420, 50 + 22 * i, 700, 67 + 22 * i) for i in range(3)]
    order = [l.text for l in reading_order(right + left)]
    assert order == [l.text for l in left + right]


def test_sidebar_beside_content_reads_as_two_columns() -> None:
    sidebar = [_line(name, 10, 40 + 30 * i, 80, 56 + 30 * i) for i, name in enumerate(["Inbox", "Sent", "Trash"])]
    content = [_line(f"Message body line {i}", 200, 35 + 14 * i, 420, 51 + 14 * i) for i in range(6)]
    assert [l.text for l in reading_order(content + sidebar)] == [l.text for l in sidebar + content]


def test_separate_windows_are_read_window_by_window() -> None:
    top = [_line("Team news", 20, 10, 110, 28)]
    cols = [_line(f"left prose line number {i} here", 20, 50 + 22 * i, 232, 69 + 22 * i) for i in range(3)]
    cols += [_line(f"right prose line number {i} here", 420, 50 + 22 * i, 660, 69 + 22 * i) for i in range(3)]
    below = [_line("Status: ready", 20, 200, 130, 215)]
    assert [l.text for l in reading_order(below + cols + top)] == [l.text for l in top + cols + below]


# ---------------------------------------------------------------- grounding


def test_grounding_puts_one_row_per_line() -> None:
    lines = reading_order([_line("Don't Save", 58, 271, 133, 286), _line("Cancel", 297, 268, 347, 287),
                               _line("Save changes?", 40, 60, 200, 78)])
    assert format_grounding(lines) == "Save changes?\nDon't Save | Cancel"
    assert format_grounding(()) == ""


def test_grounding_is_cut_at_a_row_boundary_and_says_so() -> None:
    lines = [_line(f"row {i:03d} " + "x" * 40, 0, 20 * i, 400, 20 * i + 15) for i in range(100)]
    text = format_grounding(lines, max_chars=500)
    assert len(text) < 560
    assert text.splitlines()[-1] == "[more text on the screen is not shown]"
    assert all(row.startswith("row ") for row in text.splitlines()[:-1])


def test_screen_text_cannot_close_the_quoted_block() -> None:
    text = format_grounding([_line('say """ hi', 0, 0, 100, 15)])
    assert '"""' not in text


def test_grounding_reaches_describe_context_as_a_separate_part(backend_names) -> None:
    screen = ocr_screens.save_dialog()
    context = format_grounding(ocr.read_text(screen.image))
    request = Describe(request_id=1, conversation_id="c", question="What does the dialog say?", context=context)
    prompt = prompts.with_context(request.question, request.context)
    question, rest = prompt.split("\n", 1)
    assert question == "What does the dialog say?"
    header, quoted = rest.split("\n", 1)
    assert "OCR" in header
    assert quoted.startswith('"""\nFile Edit View Help\nSave changes to document.txt?\n')
    assert "Don't Save | Cancel | Save" in quoted
    assert "Battery 87% | Wi-Fi: Connected | 12:45 PM" in quoted
    assert quoted.endswith('"""')
