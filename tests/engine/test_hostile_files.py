"""The hostile-file corpus (tests/hostile_corpus.py) through every layer that reads a picture:
``engine.image_io``, the desktop's photo loader, the CLI and the engine worker. Each answers with a
typed, plain-language refusal (or a correct result), never hangs, stays within bounded memory, and
the next request still works."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop import image_input
from desktop.image_input import ImageRejected
from engine import image_io
from engine.image_io import ImageError, open_image
from engine.protocol import (Describe, ErrorKind, Failed, Finished, GenerationSettings, ImageInput, LoadModel,
                             ModelReady, ReadText)
from tests.hostile_corpus import DEMO_MODEL, ROOT, blank_cases, image_cases

CASES = image_cases()
BYTE_CASES = [c for c in CASES if c.as_bytes]
pytestmark = pytest.mark.timeout(120)


def _id(case) -> str:  # noqa: ANN001
    return case.name.replace(" ", "-")


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_image_reader_types_every_hostile_file(case, tmp_path) -> None:  # noqa: ANN001
    path = case.make(tmp_path)
    if case.reasons is None:
        assert open_image(path).mode == "RGB"
        return
    started = time.monotonic()
    with pytest.raises(ImageError) as err:
        open_image(path)
    assert err.value.reason in case.reasons, (err.value.reason, str(err.value))
    assert time.monotonic() - started < 10  # a FIFO or /dev/zero is refused, not waited on or read
    if case.as_bytes and case.reasons != {"empty"}:
        with pytest.raises(ImageError) as err:
            open_image(path.read_bytes())
        assert err.value.reason in case.reasons


def test_postscript_is_never_handed_to_ghostscript(tmp_path) -> None:  # noqa: ANN001
    marker = Path("/tmp/lumen-hostile-eps-ran")
    marker.unlink(missing_ok=True)
    path = next(c for c in CASES if c.name == "eps named png").make(tmp_path)
    with pytest.raises(ImageError) as err:
        open_image(path)
    assert err.value.reason == "unsupported_format" and "PostScript" in str(err.value)
    assert not marker.exists()


def test_messages_say_what_the_file_is(tmp_path) -> None:  # noqa: ANN001
    said = {}
    for case in CASES:
        if case.name in ("folder", "fifo", "sparse 2 GB"):
            with pytest.raises(ImageError) as err:
                open_image(case.make(tmp_path))
            said[case.name] = str(err.value)
    assert said["folder"].endswith("is a folder")
    assert said["fifo"].endswith("is not a regular file")
    assert "is too large: 2147 MB" in said["sparse 2 GB"]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_desktop_photo_loader_refuses_with_a_spoken_reason(case, tmp_path) -> None:  # noqa: ANN001
    from desktop import messages

    path = case.make(tmp_path)
    if case.reasons is None:
        photo = image_input.load_file(path, model_side=112)
        assert photo.model_input.size == (112, 112) and len(photo.model_input.data) == 112 * 112 * 3
        return
    with pytest.raises(ImageRejected) as err:
        image_input.load_file(path)
    assert err.value.reason in case.reasons and err.value.reason in messages.IMAGE_REASONS


@pytest.mark.parametrize(("name", "picture", "problem"), blank_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_blank_photos_are_refused_like_blank_screens(name, picture, problem) -> None:  # noqa: ANN001
    from desktop import messages

    data = io.BytesIO()
    picture.save(data, "PNG")
    with pytest.raises(ImageRejected) as err:
        image_input.from_bytes(data.getvalue(), "photo.png")
    assert err.value.reason == problem
    if problem == "black":
        assert messages.IMAGE_REASONS[problem] == "the photo is completely black"


def test_a_dark_but_real_photo_is_not_blank() -> None:
    dark = np.zeros((300, 400, 3), dtype=np.uint8)
    dark[100:200, 150:250] = 60  # a dim shape in the dark
    assert image_io.blank_problem(Image.fromarray(dark)) is None


@pytest.mark.system
def test_sixteen_bit_8000_square_decodes_in_bounded_memory(tmp_path) -> None:  # noqa: ANN001
    """The 0.13 MB 8000x8000 16-bit PNG once peaked at 2.3 GB; now the peak stays within the
    ``PEAK_BYTES_PER_PIXEL`` budget that ``pixel_limit`` sizes the limit with."""
    path = tmp_path / "deep.png"
    values = np.zeros((8000, 8000), dtype=np.uint16)
    values[::7] = 40000
    Image.fromarray(values).save(path)
    code = ("import resource, sys; from engine.image_io import open_image; "
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            f"image = open_image(r'{path}'); "
            "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            "print(*image.size, *image.getpixel((0, 0)), (after - before) * 1024)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    width, height, red, green, blue, grown = (int(v) for v in out.stdout.split())
    assert (width, height) == (8000, 8000) and red == green == blue == 156  # 40000 / 257
    assert grown < 8000 * 8000 * image_io.PEAK_BYTES_PER_PIXEL, grown


def test_pixel_limit_follows_available_memory(monkeypatch) -> None:  # noqa: ANN001
    import psutil

    class Memory:
        available = 200 * 1024**2

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory())
    limit = image_io.pixel_limit()
    assert limit == int(Memory.available * image_io.MEMORY_SHARE) // image_io.PEAK_BYTES_PER_PIXEL
    picture = io.BytesIO()
    Image.linear_gradient("L").resize((4000, 3000)).save(picture, "PNG")  # 12 M pixels > 10.5 M
    with pytest.raises(ImageError) as err:
        open_image(picture.getvalue())
    assert err.value.reason == "too_large" and "memory allows now" in str(err.value)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 64 * 1024**3})())
    assert image_io.pixel_limit() == image_io.MAX_PIXELS


# ---------------------------------------------------------------------------- the CLI
def _cli(args: list[str], capsys) -> tuple[int, str, str]:  # noqa: ANN001
    from engine.__main__ import main

    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("case", [c for c in CASES if c.reasons is not None], ids=_id)
def test_cli_refuses_hostile_files_before_loading_the_model(case, tmp_path, capsys) -> None:  # noqa: ANN001
    code, _, err = _cli(["describe", str(case.make(tmp_path)), "--model", str(tmp_path / "no-model")], capsys)
    assert code == 1
    reason = err.split("(", 1)[1].split(")", 1)[0]
    assert err.startswith("error (") and reason in case.reasons, err


def test_cli_describes_a_good_picture(tmp_path, capsys) -> None:  # noqa: ANN001
    path = next(c for c in CASES if c.name == "good 16-bit png").make(tmp_path)
    code, out, _ = _cli(["describe", str(path), "--model", str(DEMO_MODEL), "--device", "cpu", "--greedy",
                         "--max-new-tokens", "8"], capsys)
    assert code == 0 and out.strip()


@pytest.mark.system
def test_cli_process_on_a_fifo_and_a_sparse_file_ends_with_a_message(tmp_path) -> None:  # noqa: ANN001
    for name in ("fifo", "sparse 2 GB"):
        path = next(c for c in CASES if c.name == name).make(tmp_path)
        out = subprocess.run([sys.executable, "-m", "engine", "describe", str(path), "--model", str(DEMO_MODEL)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("error (")


# ---------------------------------------------------------------------------- the worker
@pytest.fixture(scope="module")
def demo_worker():
    from engine.handle import run_in_thread
    from engine.worker import serve

    handle = run_in_thread(serve)
    assert isinstance(handle.request(LoadModel(str(DEMO_MODEL), device="cpu"), 60)[-1], ModelReady)
    yield handle
    handle.stop()


@pytest.mark.system
def test_worker_answers_every_hostile_picture_with_bad_image_and_keeps_serving(demo_worker, tmp_path) -> None:  # noqa: ANN001
    settings = GenerationSettings.greedy(max_new_tokens=6)
    for rid, case in enumerate(BYTE_CASES, start=1):
        folder = tmp_path / str(rid)
        folder.mkdir()
        data = case.make(folder).read_bytes()
        describe = Describe(rid, f"c{rid}", "What is this?", (), ("img",), (ImageInput("img", data),), settings)
        final = demo_worker.request(describe, 60)[-1]
        if case.reasons is None:
            assert isinstance(final, Finished), (case.name, final)
        else:
            assert isinstance(final, Failed) and final.kind is ErrorKind.BAD_IMAGE, (case.name, final)
        if case.reasons is not None:  # reading the text of it (OCR) refuses it the same way
            final = demo_worker.request(ReadText(1000 + rid, ImageInput("img", data)), 60)[-1]
            assert isinstance(final, Failed) and final.kind is ErrorKind.BAD_IMAGE, (case.name, final)
    good = next(c for c in CASES if c.name == "good png").make(tmp_path).read_bytes()
    after = Describe(999, "after", "And now?", (), ("img",), (ImageInput("img", good),), settings)
    assert isinstance(demo_worker.request(after, 60)[-1], Finished)

