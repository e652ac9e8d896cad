"""Any Pillow-readable input becomes the RGB picture a sighted person sees; bad input is a typed error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.image_io import ImageError, open_image
from engine.protocol import ImageInput


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_common_formats_decode_to_rgb(fmt):
    image = Image.new("RGB", (40, 30), (250, 10, 10))
    result = open_image(encode(image, fmt))
    assert result.mode == "RGB" and result.size == (40, 30)
    r, g, b = result.getpixel((20, 15))
    assert r > 200 and g < 60 and b < 60


def test_exif_rotation_is_honoured():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    result = open_image(encode(image, "JPEG", exif=exif.tobytes()))
    assert result.size == (20, 40)
    assert result.getpixel((10, 5))[0] > 200 and result.getpixel((10, 35))[0] < 50  # white on top


def test_transparency_is_composited_on_white_not_black():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert open_image(encode(rgba, "PNG")).getpixel((5, 5)) == (255, 255, 255)
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0] * 256)
    assert open_image(encode(palette, "PNG", transparency=0)).getpixel((5, 5)) == (255, 255, 255)


def test_cmyk_sixteen_bit_and_grey():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    assert open_image(encode(cmyk, "JPEG")).getpixel((4, 4))[0] > 200
    wide = Image.fromarray(np.full((8, 8), 65535 // 2, dtype=np.uint16))
    value = open_image(encode(wide, "PNG")).getpixel((4, 4))
    assert 120 <= value[0] <= 135 and value[0] == value[1] == value[2]  # mid grey, not clipped white
    assert open_image(encode(Image.new("L", (4, 4), 77), "PNG")).getpixel((1, 1)) == (77, 77, 77)


def test_first_frame_of_an_animation():
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = io.BytesIO()
    frames[0].save(data, format="GIF", save_all=True, append_images=frames[1:])
    assert open_image(data.getvalue()).getpixel((5, 5))[0] > 200


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"%PDF-1.4 definitely not an image", "unsupported_format"),
    (b"hello, not an image at all", "not_an_image"),
])
def test_non_images(data, reason):
    with pytest.raises(ImageError) as err:
        open_image(data)
    assert err.value.reason == reason


def test_truncated_file_is_corrupt():
    data = encode(Image.effect_noise((200, 200), 50).convert("RGB"), "PNG")
    with pytest.raises(ImageError) as err:
        open_image(data[: len(data) // 2])
    assert err.value.reason == "corrupt"


def test_decompression_bomb_refused_before_decoding():
    bomb = encode(Image.new("1", (12000, 12000)), "PNG")  # a few KB on disk, 144 M pixels
    assert len(bomb) < 100_000
    with pytest.raises(ImageError) as err:
        open_image(bomb)
    assert err.value.reason == "too_large"


def test_raw_rgb_capture_and_its_validation(tmp_path):
    ok = ImageInput("cap", bytes([10, 20, 30]) * 6, "rgb", (3, 2))
    assert open_image(ok).getpixel((2, 1)) == (10, 20, 30)
    with pytest.raises(ImageError):
        open_image(ImageInput("cap", b"\x00" * 5, "rgb", (3, 2)))
    with pytest.raises(ImageError) as err:
        open_image(tmp_path / "missing.png")
    assert err.value.reason == "not_found"
    with pytest.raises(ImageError) as err:
        open_image(tmp_path)
    assert err.value.reason == "folder"


def test_model_input_image_sent_instead_of_the_full_capture_gives_identical_pixels():
    """The desktop may downscale a capture itself (ModelReady.image_size) and send the small raw
    image: the engine's preprocessing must then see exactly the pixels it would have computed."""
    import numpy as np
    import torch

    from engine.image_io import model_input_image
    from engine.minigpt4.image_processing import preprocess

    rng = np.random.default_rng(0)
    full = Image.fromarray(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), "RGB")
    small = model_input_image(full, 224)
    sent = ImageInput("cap", small.tobytes(), "rgb", small.size)
    assert len(sent.data) == 224 * 224 * 3
    assert torch.equal(preprocess([open_image(sent)], 224), preprocess([full], 224))
