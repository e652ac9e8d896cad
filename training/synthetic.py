"""A synthetic image-text set (shapes, colours, positions) in the stage-2 ``cc_sbu_align`` layout.

Used by ``python -m training demo`` and the tests. Every image shows one filled shape of one colour
in one region on a light background with jitter in size, placement and shade; its caption names
the three attributes ("A red circle on the left."). Generation is a pure function of the seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (235, 200, 20)}
SHAPES = ("circle", "square", "triangle")
POSITIONS = {"on the left": (0.25, 0.5), "on the right": (0.75, 0.5), "at the top": (0.5, 0.25),
             "at the bottom": (0.5, 0.75), "in the middle": (0.5, 0.5)}


@dataclass(frozen=True)
class Sample:
    image_id: str
    colour: str
    shape: str
    position: str

    @property
    def caption(self) -> str:
        return f"A {self.colour} {self.shape} {self.position}."


def draw(sample: Sample, size: int, rng: random.Random) -> Image.Image:
    shade = rng.randint(200, 255)
    image = Image.new("RGB", (size, size), (shade, shade, rng.randint(200, 255)))
    cx, cy = POSITIONS[sample.position]
    r = size * rng.uniform(0.13, 0.2)
    x = size * cx + rng.uniform(-0.05, 0.05) * size
    y = size * cy + rng.uniform(-0.05, 0.05) * size
    colour = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in COLOURS[sample.colour])
    pen = ImageDraw.Draw(image)
    if sample.shape == "circle":
        pen.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif sample.shape == "square":
        pen.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    else:
        pen.polygon([(x, y - r), (x - r, y + r * 0.8), (x + r, y + r * 0.8)], fill=colour)
    return image


def make_split(folder: Path, count: int, seed: int, size: int = 112, prefix: str = "s") -> list[Sample]:
    """Write ``folder/image/<id>.jpg`` and ``folder/filter_cap.json``; return the samples."""
    rng = random.Random(seed)
    (folder / "image").mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(count):
        s = Sample(f"{prefix}{i:05d}", rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.choice(list(POSITIONS)))
        draw(s, size, rng).save(folder / "image" / f"{s.image_id}.jpg", quality=95)
        samples.append(s)
    records = [{"image_id": s.image_id, "caption": s.caption} for s in samples]
    (folder / "filter_cap.json").write_text(json.dumps({"annotations": records}, indent=1))
    return samples


def parse_attributes(text: str) -> dict[str, str | None]:
    """The colour, shape and position named in a generated answer (None when absent or ambiguous)."""
    low = text.lower()

    def one(options) -> str | None:
        found = [o for o in options if o in low]
        return found[0] if len(found) == 1 else None

    return {"colour": one(COLOURS), "shape": one(SHAPES), "position": one(POSITIONS)}
