"""Photos from a file, a drop, or the clipboard -> a validated ``Photo`` or a typed rejection.

Run off the GUI thread (``AssistantController.open_photo``): a large picture takes seconds to
decode. The picture is decoded once, here, with ``engine.image_io`` (torch-free, the engine's own
rules: supported formats only, regular files only, bounded size and pixels), then checked for
being blank like a screen capture, and, when the model's input side is known, reduced to what
the model sees so the engine does not decode it again. The original bytes are kept for OCR and
the transcript; nothing is written to disk.
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
    """``reason`` is a key of ``messages.IMAGE_REASONS`` (``engine.image_io.ImageError`` reasons and
    ``engine.image_io.blank_problem`` results)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Photo:
    image: ImageInput
    label: str  # e.g. the file name, for the transcript and the acknowledgement
    size: tuple[int, int]
    model_input: ImageInput | None = None  # the model's view (model_side x model_side raw RGB)


def new_image_id() -> str:
    return uuid.uuid4().hex[:12]


def load_file(path: Path | str, model_side: int | None = None) -> Photo:
    path = Path(path)
    try:
        data = image_io.read_file(path, MAX_FILE_BYTES)
    except image_io.ImageError as exc:
        raise ImageRejected(exc.reason, str(exc)) from exc
    return from_bytes(data, path.name, model_side)


def from_bytes(data: bytes, label: str, model_side: int | None = None) -> Photo:
    """Decode once (EXIF rotation applied), refuse a blank picture, prepare the model's view."""
    if not data:
        raise ImageRejected("empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageRejected("too_large", f"{len(data)} bytes")
    try:
        image = image_io.open_image(data, max_pixels=MAX_PIXELS)
    except image_io.ImageError as exc:
        raise ImageRejected(exc.reason, str(exc)) from exc
    problem = image_io.blank_problem(image)
    if problem is not None:
        raise ImageRejected(problem, f"{image.size[0]}x{image.size[1]} picture")
    image_id = new_image_id()
    model_input = None
    if model_side:
        small = image_io.model_input_image(image, model_side)
        model_input = ImageInput(image_id, small.tobytes(), "rgb", (model_side, model_side))
    return Photo(ImageInput(image_id, data, "encoded"), label, image.size, model_input)


def from_qimage(qimage: object, label: str = "pasted image", model_side: int | None = None) -> Photo:
    """A clipboard image -> PNG bytes in memory (QImage is reentrant: this may run off the GUI thread)."""
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if qimage.isNull() or not qimage.save(buffer, "PNG"):  # type: ignore[attr-defined]
        raise ImageRejected("not_an_image", "clipboard image could not be encoded")
    return from_bytes(bytes(buffer.data()), label, model_side)


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
