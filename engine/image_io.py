"""Turn whatever the user gives us into a validated RGB image. Torch-free (the desktop uses it too).

Any Pillow-readable input: EXIF rotation honoured, alpha and palette transparency composited on white,
CMYK and 16-bit converted properly, first frame of animations. Non-images, corrupt files and
decompression bombs raise ``ImageError`` with a machine-readable ``reason``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from engine.protocol import ImageInput

MAX_PIXELS = 64_000_000  # 8000 x 8000; a 4K screen is 8.3 M. Larger is refused before decoding.
MAX_FILE_BYTES = 256 * 1024 * 1024


class ImageError(ValueError):
    """``reason`` is one of: not_an_image, corrupt, too_large, empty, unreadable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def open_image(source: bytes | str | Path | ImageInput, max_pixels: int = MAX_PIXELS) -> Image.Image:
    if isinstance(source, ImageInput):
        if source.encoding == "rgb":
            return _from_rgb(source.data, source.size)
        source = source.data
    data = _read(source)
    if not data:
        raise ImageError("empty", "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError("too_large", f"image is {width}x{height}, more than {max_pixels} pixels")
            if width == 0 or height == 0:
                raise ImageError("empty", "image has no pixels")
            image.seek(0)  # first frame of GIF/WebP/TIFF animations
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("too_large", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not_an_image", "not an image file Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError("corrupt", f"the image data is damaged: {exc}") from exc
    return to_rgb(image)


def _read(source: bytes | str | Path) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError("too_large", f"file is {size} bytes")
        return path.read_bytes()
    except IsADirectoryError as exc:
        raise ImageError("not_an_image", f"{path} is a folder") from exc
    except OSError as exc:
        raise ImageError("unreadable", f"cannot read {path}: {exc.strerror or exc}") from exc


def _from_rgb(data: bytes, size: tuple[int, int] | None) -> Image.Image:
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise ImageError("corrupt", "raw RGB image without a valid size")
    if size[0] * size[1] > MAX_PIXELS:
        raise ImageError("too_large", f"image is {size[0]}x{size[1]}")
    if len(data) != size[0] * size[1] * 3:
        raise ImageError("corrupt", f"raw RGB data has {len(data)} bytes, expected {size[0] * size[1] * 3}")
    return Image.frombytes("RGB", size, data)


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB view of ``image`` as a sighted person would see it."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # broken EXIF must not lose the picture
        pass
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _wide_grey_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "CMYK":
        image = image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def model_input_image(image: Image.Image, size: int) -> Image.Image:
    """The official eval transform's first step: PIL bicubic resize of the RGB image to
    (size, size), aspect ratio not kept. ``engine.image_processing.preprocess`` uses it, so a
    caller that sends this result instead of the full image gets bit-identical pixels (resizing
    an image to its own size is a copy in PIL)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image.resize((size, size), resample=Image.BICUBIC)


def _wide_grey_to_rgb(image: Image.Image) -> Image.Image:
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    else:  # 32-bit int or float: stretch the range actually used
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    grey = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    return grey.convert("RGB")
