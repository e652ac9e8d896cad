from pathlib import Path

import pytest
from PIL import Image

from desktop import image_input
from desktop.image_input import ImageRejected


def picture(size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A green picture with a white square: something to describe (a flat colour is refused)."""
    image = Image.new("RGB", size, (10, 200, 30))
    image.paste((255, 255, 255), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    return image


def save(tmp_path: Path, name: str, **kw) -> Path:  # noqa: ANN003
    path = tmp_path / name
    picture(kw.pop("size", (40, 30))).save(path, **kw)
    return path


@pytest.mark.parametrize("name", ["a.png", "b.jpg", "c.webp", "d.gif", "e.bmp", "f.tiff"])
def test_common_formats_are_accepted_with_original_bytes(tmp_path, name) -> None:  # noqa: ANN001
    path = save(tmp_path, name)
    photo = image_input.load_file(path)
    assert photo.size == (40, 30) and photo.label == name
    assert photo.image.encoding == "encoded" and photo.image.data == path.read_bytes()


def test_exif_rotation_is_honoured(tmp_path) -> None:  # noqa: ANN001
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    path = save(tmp_path, "rotated.jpg", size=(40, 30), exif=exif)
    assert image_input.load_file(path).size == (30, 40)


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty"),
    (b"hello, not an image", "not_an_image"),
    (None, "corrupt"),  # a truncated PNG
])
def test_bad_files_are_rejected_with_a_reason(tmp_path, content, reason) -> None:  # noqa: ANN001
    path = tmp_path / "bad.png"
    if content is None:
        content = save(tmp_path, "good.png", size=(300, 300)).read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(ImageRejected) as info:
        image_input.load_file(path)
    assert info.value.reason == reason


def test_missing_file_and_decompression_bomb(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    with pytest.raises(ImageRejected) as info:
        image_input.load_file(tmp_path / "nope.png")
    assert info.value.reason == "not_found"
    big = save(tmp_path, "big.png", size=(3000, 3000))
    monkeypatch.setattr(image_input, "MAX_PIXELS", 1_000_000)
    with pytest.raises(ImageRejected) as info:
        image_input.load_file(big)
    assert info.value.reason == "too_large"


def test_paths_from_copied_text() -> None:
    text = 'file:///home/me/My%20Photos/cat.JPG\n"/tmp/x.png"\nnot a path\n/tmp/notes.txt'
    assert image_input.paths_from_text(text) == [Path("/home/me/My Photos/cat.JPG"), Path("/tmp/x.png")]
