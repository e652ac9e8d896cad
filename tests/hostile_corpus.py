"""A generator of hostile inputs: files a user (or a damaged disk) can hand Lumen.

Each ``Case`` is written under a folder by its ``make`` function and says what the reader must
answer: the typed reasons it may give (``reasons``), or ``None`` for a picture that must open.
tests/engine/test_hostile_files.py runs the corpus through the image reader, the desktop's photo
loader, the CLI and the engine worker; the model-folder and settings corpora are used by the
loader's and the settings' tests.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = ROOT / "resources" / "demo_model"


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]  # writes the input under a folder, returns its path
    reasons: frozenset[str] | None  # accepted ImageError reasons; None: must decode
    as_bytes: bool = True  # also meaningful as bytes sent to the engine (not a FIFO, a folder...)


def _encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def _noise(size: tuple[int, int] = (64, 48)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _file(name: str, data: bytes | Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data() if callable(data) else data)
        return path
    return make


def _fifo(folder: Path) -> Path:
    path = folder / "pipe.png"
    os.mkfifo(path)
    return path


def _dev_zero(folder: Path) -> Path:
    path = folder / "zero.png"
    path.symlink_to("/dev/zero")
    return path


def _folder(folder: Path) -> Path:
    path = folder / "album.png"
    path.mkdir()
    return path


def _dangling(folder: Path) -> Path:
    path = folder / "gone.png"
    path.symlink_to(folder / "never-existed.png")
    return path


def _sparse(folder: Path) -> Path:
    """A 2 GB file of zeros that takes no disk space: must be refused from its size, unread."""
    path = folder / "huge.png"
    with open(path, "wb") as f:
        f.truncate(2 * 1024**3)
    return path


_EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
        b"(%pipe%touch /tmp/lumen-hostile-eps-ran) (w) file\nshowpage\n%%EOF\n")


def _gif_huge_screen() -> bytes:
    data = bytearray(_encode(Image.new("P", (4, 4)), "GIF"))
    data[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen 65535 x 65535
    return bytes(data)


def _bmp_huge_header() -> bytes:
    data = bytearray(_encode(Image.new("RGB", (4, 4)), "BMP"))
    data[18:26] = struct.pack("<ii", 60000, 60000)  # 3.6 G pixels declared, 48 bytes of pixels
    return bytes(data)


def _tiff_bad_offsets() -> bytes:
    data = bytearray(_encode(_noise(), "TIFF"))
    data[4:8] = struct.pack("<I", len(data) + 1000)  # first IFD beyond the end of the file
    return bytes(data)


def _png_bad_crc() -> bytes:
    data = bytearray(_encode(_noise(), "PNG"))
    data[29] ^= 0xFF  # inside IHDR: its CRC no longer matches
    return bytes(data)


def _avif_real() -> bytes:
    try:
        return _encode(_noise(), "AVIF")
    except (KeyError, OSError):  # no AVIF encoder in this Pillow: a header is enough to be refused
        return b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64


def image_cases() -> list[Case]:
    r = frozenset
    png = _encode(_noise(), "PNG")
    jpeg = _encode(_noise(), "JPEG")
    return [
        Case("eps named png", _file("photo.png", _EPS), r({"unsupported_format"})),
        Case("pdf", _file("scan.png", b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"),
             r({"unsupported_format"})),
        Case("avif", _file("phone.avif", _avif_real), r({"unsupported_format"})),
        Case("corrupt avif", _file("broken.avif", b"\x00\x00\x00\x1cftypavif" + os.urandom(200)),
             r({"unsupported_format"})),
        Case("odd dds", _file("texture.dds", b"DDS |\x00\x00\x00" + b"\xff" * 120), r({"unsupported_format"})),
        Case("jpeg 2000", _file("x.jp2", b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 64),
             r({"unsupported_format"})),
        Case("garbage", _file("noise.png", lambda: os.urandom(4096)), r({"not_an_image"})),
        Case("text", _file("notes.jpg", b"hello, this is not a picture\n" * 10), r({"not_an_image"})),
        Case("empty", _file("empty.png", b""), r({"empty"})),
        Case("truncated png", _file("half.png", png[: len(png) // 2]), r({"corrupt"})),
        Case("truncated jpeg", _file("half.jpg", jpeg[: len(jpeg) // 3]), r({"corrupt"})),
        Case("png bad crc", _file("crc.png", _png_bad_crc), r({"corrupt"})),
        Case("tiff bad offsets", _file("bad.tiff", _tiff_bad_offsets), r({"corrupt", "not_an_image"})),
        Case("png bomb", _file("bomb.png", lambda: _encode(Image.new("1", (12000, 12000)), "PNG")),
             r({"too_large"})),
        Case("gif huge screen", _file("huge.gif", _gif_huge_screen), r({"too_large", "corrupt"})),
        Case("bmp huge header", _file("huge.bmp", _bmp_huge_header), r({"too_large", "corrupt"})),
        Case("fifo", _fifo, r({"not_a_file"}), as_bytes=False),
        Case("dev zero", _dev_zero, r({"not_a_file"}), as_bytes=False),
        Case("folder", _folder, r({"folder"}), as_bytes=False),
        Case("dangling link", _dangling, r({"not_found"}), as_bytes=False),
        Case("sparse 2 GB", _sparse, r({"too_large"}), as_bytes=False),
        Case("good png", _file("fine.png", png), None),
        Case("good 16-bit png", _file("deep.png", lambda: _encode(Image.fromarray(
            (np.arange(200 * 300, dtype=np.uint32).reshape(200, 300) % 65536).astype(np.uint16)), "PNG")), None),
    ]


# ---------------------------------------------------------------------------- blank photos
def blank_cases() -> list[tuple[str, Image.Image, str]]:
    """Pictures with nothing to describe and what ``engine.image_io.blank_problem`` says of them."""
    near_black = np.random.default_rng(2).integers(0, 9, (300, 400, 3), dtype=np.uint8)
    near_white = np.clip(250 + np.random.default_rng(3).normal(0, 0.4, (300, 400, 3)), 0, 255).astype(np.uint8)
    return [
        ("all black", Image.new("RGB", (400, 300), (0, 0, 0)), "black"),
        ("near black", Image.fromarray(near_black), "black"),
        ("all white", Image.new("RGB", (400, 300), (255, 255, 255)), "uniform"),
        ("near white", Image.fromarray(near_white), "blank"),
    ]


# ---------------------------------------------------------------------------- model folders
def _edit_json(relative: str, edit: Callable[[object], object]) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        path = model / relative
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return apply


def _write(relative: str, data: bytes | Callable[[Path], bytes]) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        path = model / relative
        content = data(path) if callable(data) else data
        path.unlink()
        path.write_bytes(content)
    return apply


def _replace_with_fifo(relative: str) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        (model / relative).unlink()
        os.mkfifo(model / relative)
    return apply


def _drop_llm_tensor(model: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = model / "llm" / "model.safetensors"
    state = load_file(str(path))
    del state[next(k for k in state if ".mlp.down_proj." in k)]
    save_file(state, str(path), metadata={"format": "pt"})


def _pickle_payload(model: Path) -> None:
    """The safetensors weights replaced by a pytorch_model.bin whose pickle runs a command."""
    import pickle

    class Payload:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, ("touch /tmp/lumen-hostile-pickle-ran",))

    (model / "llm" / "model.safetensors").unlink()
    (model / "llm" / "pytorch_model.bin").write_bytes(pickle.dumps({"model": Payload()}))


def _set_patch(value: object) -> Callable[[object], object]:
    def edit(raw: object) -> object:
        raw["config"]["vision"]["patch_size"] = value  # type: ignore[index]
        return raw
    return edit


def model_cases() -> list[tuple[str, Callable[[Path], None], str]]:
    """(name, how to damage a copy of the demo model, the file the error must name)."""
    return [
        ("json list as lumen_model.json", _write("lumen_model.json", b"[1, 2, 3]"), "lumen_model.json"),
        ("patch_size 0", _edit_json("lumen_model.json", _set_patch(0)), "lumen_model.json"),
        ("patch_size text", _edit_json("lumen_model.json", _set_patch("14")), "lumen_model.json"),
        ("deeply nested lumen_model.json", _write("lumen_model.json", b"[" * 100000 + b"]" * 100000),
         "lumen_model.json"),
        ("malformed llm config", _write("llm/config.json", b'{"hidden_size": 128, '), "config.json"),
        ("llm config not an object", _write("llm/config.json", b'"llama"'), "config.json"),
        ("truncated llm weights", _write("llm/model.safetensors", lambda p: p.read_bytes()[:5000]),
         "model.safetensors"),
        ("llm weights missing a tensor", _drop_llm_tensor, "model.safetensors"),
        ("pickle payload as pytorch_model.bin", _pickle_payload, "pytorch_model.bin"),
        ("garbage tokenizer", _write("tokenizer.model", b"\x00garbage" * 100), "tokenizer.model"),
        ("truncated visual weights", _write("visual.safetensors", lambda p: p.read_bytes()[:3000]),
         "visual.safetensors"),
        ("fifo as visual.safetensors", _replace_with_fifo("visual.safetensors"), "visual.safetensors"),
        ("fifo as llm config", _replace_with_fifo("llm/config.json"), "config.json"),
        ("folder as tokenizer", lambda m: ((m / "tokenizer.model").unlink(), (m / "tokenizer.model").mkdir()),
         "tokenizer.model"),
    ]


def damaged_model(folder: Path, damage: Callable[[Path], None]) -> Path:
    model = folder / "model"
    shutil.copytree(DEMO_MODEL, model)
    damage(model)
    return model


# ---------------------------------------------------------------------------- settings files
def settings_cases() -> list[tuple[str, Callable[[Path], None]]]:
    """(name, how to make ``path`` a hostile settings file)."""
    return [
        ("deeply nested", lambda p: p.write_text("[" * 100000 + "]" * 100000)),
        ("deeply nested object", lambda p: p.write_text('{"a":' * 50000 + "1" + "}" * 50000)),
        ("fifo", lambda p: os.mkfifo(p)),
        ("symlink to /dev/zero", lambda p: p.symlink_to("/dev/zero")),
        ("folder", lambda p: p.mkdir()),
        ("huge", lambda p: p.write_text('{"voice": "' + "x" * (3 * 1024 * 1024) + '"}')),
        ("binary", lambda p: p.write_bytes(os.urandom(2000))),
        ("nul bytes", lambda p: p.write_bytes(b"\x00" * 100)),
        ("wrong types", lambda p: p.write_text('{"hotkeys": [1], "rate": "fast", "volume": 1e999}')),
    ]
