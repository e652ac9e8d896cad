"""Regenerate Lumen's icon: a high-contrast eye (dark outline, bright iris). Run: python resources/icons/generate.py"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw


def icon(size: int) -> Image.Image:
    scale = 4  # draw large, downsample for smooth edges
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 5, fill=(20, 24, 40, 255))
    m = s // 10
    d.ellipse((m, s // 4, s - m, 3 * s // 4), fill=(255, 255, 255, 255))
    r = s // 5
    d.ellipse((s // 2 - r, s // 2 - r, s // 2 + r, s // 2 + r), fill=(255, 190, 0, 255))
    r2 = s // 11
    d.ellipse((s // 2 - r2, s // 2 - r2, s // 2 + r2, s // 2 + r2), fill=(20, 24, 40, 255))
    return img.resize((size, size), Image.LANCZOS)


if __name__ == "__main__":
    here = Path(__file__).parent
    icon(256).save(here / "lumen.png")
    icon(32).save(here / "lumen-32.png")
