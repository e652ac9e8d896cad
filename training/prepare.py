"""Turn a folder of images or a caption list into stage-1 webdataset shards.

The official stage-1 shards were made by img2dataset (``--image_size 224``, its default
``resize_mode border``, JPEG quality 95); each sample is ``<key>.jpg`` + ``<key>.json`` with the text
in ``caption``. Sources accepted here (local files only; downloading URLs is img2dataset's job):

* a folder of images, each with a same-named ``.txt`` caption (or one ``captions.json(l)`` beside them);
* a ``.json`` list / ``.jsonl`` file of ``{"image": path, "caption": text}`` (paths relative to it);
* a ``.tsv`` with ``image<TAB>caption`` lines.

Unreadable images and empty captions are skipped and counted in the report.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from training.data import IMAGE_EXTS, require

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareReport:
    written: int
    skipped: int
    shards: tuple[str, ...]


def iter_pairs(source: str | Path) -> Iterator[tuple[Path, str]]:
    source = Path(source)
    if source.is_dir():
        sidecar = next((source / n for n in ("captions.jsonl", "captions.json") if (source / n).is_file()), None)
        if sidecar is not None:
            yield from iter_pairs(sidecar)
            return
        for image in sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTS):
            txt = image.with_suffix(".txt")
            yield image, txt.read_text(encoding="utf-8").strip() if txt.is_file() else ""
        return
    base = source.parent
    if source.suffix == ".tsv":
        for line in source.read_text(encoding="utf-8").splitlines():
            if line.strip():
                image, _, caption = line.partition("\t")
                yield base / image, caption.strip()
        return
    if source.suffix == ".jsonl":
        records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        data = json.loads(source.read_text(encoding="utf-8"))
        records = data["annotations"] if isinstance(data, dict) else data
    for r in records:  # {"image": path} lists, or a cc_sbu_align filter_cap.json (image/<image_id>.jpg)
        path = r.get("image") or r.get("image_path") or f"image/{r['image_id']}.jpg"
        yield base / str(path), str(r.get("caption", ""))


def resize(image: Image.Image, size: int, mode: str) -> Image.Image:
    """img2dataset's resize modes: ``border`` (fit inside, black border), ``center_crop``, ``keep``."""
    if mode == "keep":
        return image
    w, h = image.size
    if mode == "center_crop":
        scale = size / min(w, h)
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        return image.crop((left, top, left + size, top + size))
    scale = size / max(w, h)
    inner = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
    canvas = Image.new("RGB", (size, size))
    canvas.paste(inner, ((size - inner.width) // 2, (size - inner.height) // 2))
    return canvas


def prepare_shards(source: str | Path, out: str | Path, image_size: int = 224, resize_mode: str = "border",
                   samples_per_shard: int = 10000, quality: int = 95) -> PrepareReport:
    wds = require("webdataset")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    with wds.ShardWriter(str(out / "%05d.tar"), maxcount=samples_per_shard, verbose=0) as sink:
        for index, (path, caption) in enumerate(iter_pairs(source)):
            try:
                if not caption.strip():
                    raise ValueError("empty caption")
                with Image.open(path) as im:
                    image = resize(im.convert("RGB"), image_size, resize_mode)
                buf = io.BytesIO()
                image.save(buf, format="JPEG", quality=quality)
            except Exception as exc:  # skipped and counted, never fatal
                skipped += 1
                log.warning("skipping %s: %s", path, exc)
                continue
            meta = {"caption": caption, "source": str(path), "width": image.width, "height": image.height}
            sink.write({"__key__": f"{index:09d}", "jpg": buf.getvalue(), "json": json.dumps(meta).encode()})
            written += 1
    shards = tuple(sorted(p.name for p in out.glob("*.tar")))
    if shards:
        pattern = f"{out}/{{{shards[0][:-4]}..{shards[-1][:-4]}}}.tar"
        log.info("wrote %d samples (%d skipped) into %d shards: %s", written, skipped, len(shards), pattern)
    return PrepareReport(written, skipped, shards)


def shard_pattern(out: str | Path) -> str:
    """Brace pattern covering every shard in ``out`` (for ``--laion_shards=...``)."""
    shards = sorted(Path(out).glob("*.tar"))
    if not shards:
        raise FileNotFoundError(f"no .tar shards in {out}")
    return f"{Path(out)}/{{{shards[0].stem}..{shards[-1].stem}}}.tar"
