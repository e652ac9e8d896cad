"""Turn whatever the user gives us into a validated RGB image. Torch-free (the desktop uses it too).

Only the formats Lumen supports are opened: PNG, JPEG, WebP, GIF, BMP and TIFF (``FORMATS``).
Everything else Pillow could read is refused before any decoder runs, because
* EPS/PostScript and PDF are programs: Pillow hands them to Ghostscript, an interpreter;
* AVIF, HEIF, JPEG 2000, DDS, ICNS, PSD, FITS, ... are rarely photos from a phone or a screen,
  and each adds a large native decoder (with its own failure modes) for no benefit here.
A path is read only when it is a regular file no larger than ``MAX_FILE_BYTES`` (a FIFO, a device
such as /dev/zero or a folder is refused without reading). The pixel limit is the smaller of
``MAX_PIXELS`` and what the available memory can decode (``pixel_limit``); it is checked from the
header, before decoding.

Accepted pictures: EXIF rotation honoured, alpha and palette transparency composited on white,
CMYK and 16-bit converted properly, first frame of animations. Every failure, whatever the
decoder raises, is an ``ImageError`` with a machine-readable ``reason``.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from engine.protocol import ErrorKind, ImageInput

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # Pillow format names Lumen opens
MAX_PIXELS = 64_000_000  # 8000 x 8000; a 4K screen is 8.3 M. Larger is refused before decoding.
MAX_FILE_BYTES = 256 * 1024 * 1024
# Peak memory of one decode per pixel, with headroom: measured 7.8 for 8000x8000 RGBA and
# grey+alpha PNGs (the decoded frame, its RGBA form and the RGB result), 5 for 16-bit grey.
PEAK_BYTES_PER_PIXEL = 10
MEMORY_SHARE = 0.5  # a decode may use at most this share of the memory available now

# Magic numbers of formats people do meet, to say what a refused file is (in ``detail``).
_SIGNATURES = ((b"%!PS", "PostScript"), (b"\xc5\xd0\xd3\xc6", "EPS"), (b"%PDF", "PDF"), (b"DDS ", "DDS"),
               (b"8BPS", "Photoshop"), (b"icns", "ICNS"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
               (b"SIMPLE  =", "FITS"))
_SUPPORTED_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
                         (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))
_FTYP_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF"}


class ImageError(ValueError):
    """``reason`` is one of: not_an_image, unsupported_format, corrupt, too_large, empty, unreadable,
    not_found, folder, not_a_file (keys of ``desktop.messages.IMAGE_REASONS``)."""

    kind = ErrorKind.BAD_IMAGE  # how engine.protocol.failure_for reports it

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def pixel_limit(max_pixels: int = MAX_PIXELS) -> int:
    """``max_pixels``, lowered to what ``MEMORY_SHARE`` of the available memory can decode."""
    try:
        import psutil

        available = psutil.virtual_memory().available
    except Exception:  # noqa: BLE001 - no reading: keep the fixed limit
        return max_pixels
    return max(1, min(max_pixels, int(available * MEMORY_SHARE) // PEAK_BYTES_PER_PIXEL))


def open_image(source: bytes | str | Path | ImageInput, max_pixels: int = MAX_PIXELS) -> Image.Image:
    if isinstance(source, ImageInput):
        if source.encoding == "rgb":
            return _from_rgb(source.data, source.size)
        source = source.data
    data = source if isinstance(source, bytes | bytearray | memoryview) else read_file(source)
    if not data:
        raise ImageError("empty", "the file is empty")
    limit = pixel_limit(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width * height > limit:
                raise ImageError("too_large", f"image is {width}x{height}, more than the {limit} pixels "
                                              f"{'memory allows now' if limit < max_pixels else 'allowed'}")
            if width == 0 or height == 0:
                raise ImageError("empty", "image has no pixels")
            image.seek(0)  # first frame of GIF/WebP/TIFF animations
            image.load()
            return to_rgb(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("too_large", str(exc)) from exc
    except UnidentifiedImageError as exc:
        found = sniff(bytes(data[:32]))
        if found in FORMATS:  # a supported picture whose header Pillow could not make sense of
            raise ImageError("corrupt", f"the {found} header is damaged") from exc
        if found:
            raise ImageError("unsupported_format", f"a {found} file; Lumen opens {', '.join(FORMATS)}") from exc
        raise ImageError("not_an_image", "not a PNG, JPEG, WebP, GIF, BMP or TIFF picture") from exc
    except MemoryError as exc:
        raise ImageError("too_large", "not enough memory to decode the image") from exc
    except Exception as exc:  # noqa: BLE001 - decoders raise anything on damaged data (struct.error, IndexError...)
        raise ImageError("corrupt", f"the image data is damaged: {type(exc).__name__}: {exc}") from exc


def sniff(head: bytes) -> str | None:
    """The format ``head`` (a file's first bytes) announces, when it is a well-known one."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _SUPPORTED_SIGNATURES + _SIGNATURES:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12])
    return None


def read_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes, its size checked before reading; anything else is an ``ImageError``.

    Opened without blocking (a FIFO would otherwise wait for a writer forever) and checked on the
    open descriptor, so a file swapped after the check is not read either."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError as exc:
        raise ImageError("folder", f"{path} is a folder") from exc
    except FileNotFoundError as exc:
        raise ImageError("not_found", f"{path} was not found") from exc
    except OSError as exc:
        raise ImageError("unreadable", f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError("folder", f"{path} is a folder")
        if not stat.S_ISREG(info.st_mode):
            raise ImageError("not_a_file", f"{path} is not a regular file")
        if info.st_size > max_bytes:
            raise ImageError("too_large", f"{path} is too large: {info.st_size / 1e6:.0f} MB "
                                          f"(at most {max_bytes / 1e6:.0f} MB)")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise ImageError("unreadable", f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew while being read
        raise ImageError("too_large", f"{path} is too large: more than {max_bytes / 1e6:.0f} MB")
    return data


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
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of an unrotated picture
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
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, (0, 0), rgba)  # = alpha_composite on white, without two more RGBA copies
        return white
    return image.convert("RGB")


def blank_problem(image: Image.Image) -> str | None:
    """"black", "uniform" (one flat colour) or "blank" (almost nothing differs) when an RGB picture
    has nothing to describe, else None. Judged on a copy reduced to about 512 pixels across."""
    from PIL import ImageStat

    factor = max(1, max(image.size) // 512)
    small = image.reduce(factor) if factor > 1 else image
    extrema = small.getextrema()
    if all(hi <= 10 for _, hi in extrema):
        return "black"
    if all(hi - lo <= 2 for lo, hi in extrema):
        return "uniform"
    if all(sd < 1.0 for sd in ImageStat.Stat(small).stddev):
        return "blank"
    return None


def model_input_image(image: Image.Image, size: int) -> Image.Image:
    """The official eval transform's first step: PIL bicubic resize of the RGB image to
    (size, size), aspect ratio not kept. ``engine.minigpt4.image_processing.preprocess`` uses it, so a
    caller that sends this result instead of the full image gets bit-identical pixels (resizing
    an image to its own size is a copy in PIL)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image.resize((size, size), resample=Image.BICUBIC)


def _wide_grey_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit or float grey -> 8-bit RGB, a band of rows at a time: a 64 M pixel 16-bit
    picture needs its 8-bit copy and a few MB besides, not several float64 copies."""
    import numpy as np

    width, height = image.size
    if image.mode.startswith("I;16"):
        low, scale = 0.0, None  # v / 257, rounded: (v + 128) // 257 exactly (257 is odd: no ties)
    else:  # 32-bit int or float: stretch the range actually used
        low, high = (float(v) for v in image.getextrema())
        scale = 255.0 / (high - low) if high > low else 0.0
    out = np.empty((height, width), dtype=np.uint8)
    rows = max(1, (1 << 20) // max(1, width))
    for top in range(0, height, rows):
        band = np.asarray(image.crop((0, top, width, min(height, top + rows))))
        if scale is None:
            out[top:top + band.shape[0]] = (band.astype(np.uint32) + 128) // 257
        else:
            values = (band.astype(np.float64) - low) * scale
            out[top:top + band.shape[0]] = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L").convert("RGB")
