"""Photos from a file, a drop, or the clipboard -> a validated ``ImageInput`` or a typed rejection.

Validation decodes the picture once with ``engine.image_io.open_image`` (torch-free; the engine
applies the same rules), so a damaged file, a non-image or a decompression bomb is refused here
with a message rather than failing in the engine. The original bytes are what the engine
receives; nothing is written to disk.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from engine import image_io
from engine.protocol import ImageInput

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 64_000_000
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


class ImageRejected(Exception):
    """``reason`` is a key of ``messages.IMAGE_REASONS`` (the same keys as ``engine.image_io.ImageError``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Photo:
    image: ImageInput
    label: str  # e.g. the file name, for the transcript and the acknowledgement
    size: tuple[int, int]


def new_image_id() -> str:
    return uuid.uuid4().hex[:12]


def load_file(path: Path | str) -> Photo:
    path = Path(path)
    try:
        if not path.is_file():
            raise ImageRejected("not_found", str(path))
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ImageRejected("too_large", f"{path.stat().st_size} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise ImageRejected("unreadable", str(exc)) from exc
    return from_bytes(data, path.name)


def from_bytes(data: bytes, label: str) -> Photo:
    if not data:
        raise ImageRejected("empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageRejected("too_large", f"{len(data)} bytes")
    size = validate(data)
    return Photo(ImageInput(new_image_id(), data, "encoded"), label, size)


def validate(data: bytes) -> tuple[int, int]:
    """Decode fully with the engine's own rules; return (width, height) after EXIF rotation."""
    try:
        image = image_io.open_image(data, max_pixels=MAX_PIXELS)
    except image_io.ImageError as exc:
        raise ImageRejected(exc.reason, str(exc)) from exc
    return image.size


def from_qimage(qimage: object, label: str = "pasted image") -> Photo:
    """A clipboard image -> PNG bytes in memory (not the hot path: pastes are rare and small)."""
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if qimage.isNull() or not qimage.save(buffer, "PNG"):  # type: ignore[attr-defined]
        raise ImageRejected("not_an_image", "clipboard image could not be encoded")
    return from_bytes(bytes(buffer.data()), label)


def paths_from_text(text: str) -> list[Path]:
    """File paths or file:// URLs in copied text (one per line), the ones that look like images."""
    from urllib.parse import unquote, urlparse

    out = []
    for line in text.splitlines():
        line = line.strip().strip('"').strip("'")
        if line.startswith("file://"):
            line = unquote(urlparse(line).path)
        if line and Path(line).suffix.lower() in SUFFIXES:
            out.append(Path(line).expanduser())
    return out
