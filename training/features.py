"""Cache of the frozen vision side (ViT + ln_vision + Q-Former outputs), built streaming, read lazily.

Everything before ``language_projection`` is frozen, so its output can be computed once and reused
(docs/performance.md section 4: removes the ViT/Q-Former FLOPs and all JPEG decoding). A cache is a
folder of shards, ``shard-000000.safetensors``, ... (``SHARD_SIZE`` samples each), and an
``index.json`` written when the cache is complete. A shard holds

* ``features`` (n, views, tokens, dim), float16: the exact input of the projection (the Q-Former
  output, or the 4-grouped ViT tokens without Q-Former);
* ``caption_bytes`` (uint8) and ``caption_offsets`` (n + 1, int64): the captions, UTF-8, inside the
  shard (not in a header, which safetensors caps at 100 MB);
* metadata ``source_end``: how many source records were consumed up to its last sample.

Building needs only the vision side (no LLM is loaded), runs on the GPU when there is one, and
holds at most one shard in memory. Shards are written atomically; an interrupted build resumes
after its last complete shard (the source is skipped without decoding, random-crop views are seeded
by the sample's index, so the result equals an uninterrupted build). Training opens shards lazily
(memory-mapped, a few handles at a time) and keeps only the shard sizes in memory; batches are a pure
function of (seed, step), so resume stays exact. With the April random crop store several
``views`` per image (stage 2: 4-8); a training sample picks one view per pass.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from training.data import TrainTransform, clean_caption, decode_image, read_annotations, require, sample_rng

log = logging.getLogger(__name__)

SHARD_SIZE = 4096
INDEX_FILE = "index.json"
FORMAT = 2
OPEN_SHARDS = 8  # memory-mapped shard handles kept open per reader (per DataLoader worker)

# a source yields (records consumed so far, image, caption) from a given record position
Source = Callable[[int], Iterator[tuple[int, Image.Image, str]]]


@torch.no_grad()
def projection_inputs(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """What ``language_projection`` receives for these pixels (captured with a forward pre-hook, so
    the engine's own image path is the only implementation)."""
    captured: list[torch.Tensor] = []
    hook = model.language_projection.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        model.image_features(pixel_values)
    finally:
        hook.remove()
    return captured[0]


def _shard_name(i: int) -> str:
    return f"shard-{i:06d}.safetensors"


class CacheWriter:
    """Appends samples to a cache folder, one shard file per ``shard_size`` samples; resumable."""

    def __init__(self, out_dir: str | Path, views: int, model_name: str, shard_size: int = SHARD_SIZE,
                 dtype: torch.dtype = torch.float16):
        self.dir, self.views, self.model_name, self.shard_size, self.dtype = Path(out_dir), views, model_name, \
            shard_size, dtype
        self.dir.mkdir(parents=True, exist_ok=True)
        self.complete = (self.dir / INDEX_FILE).is_file()
        for partial in self.dir.glob("*.partial"):
            partial.unlink()
        self.shards: list[dict[str, Any]] = []  # {"file", "samples", "source_end"} of the complete shards
        while (self.dir / _shard_name(len(self.shards))).is_file():
            with safe_open(str(self.dir / _shard_name(len(self.shards))), framework="pt") as f:
                meta = f.metadata()
                n = f.get_slice("caption_offsets").get_shape()[0] - 1
            if int(meta["views"]) != views or meta["model"] != model_name:
                raise ValueError(f"{self.dir} holds a cache of another model or view count; use a new folder")
            self.shards.append({"file": _shard_name(len(self.shards)), "samples": n,
                                "source_end": int(meta["source_end"])})
        self.samples = sum(s["samples"] for s in self.shards)
        self.source_end = self.shards[-1]["source_end"] if self.shards else 0
        self._feats: list[torch.Tensor] = []
        self._captions: list[str] = []
        self._ends: list[int] = []

    def add(self, features: torch.Tensor, captions: list[str], source_ends: list[int]) -> None:
        """``features`` (k, views, tokens, dim) of ``k`` samples, their captions and source positions."""
        for row, caption, end in zip(features.to("cpu", self.dtype), captions, source_ends):
            self._feats.append(row)
            self._captions.append(caption)
            self._ends.append(end)
            if len(self._captions) == self.shard_size:
                self._flush()

    def _flush(self) -> None:
        if not self._captions:
            return
        encoded = [c.encode("utf-8") for c in self._captions]
        offsets = torch.tensor([0] + [len(b) for b in encoded], dtype=torch.int64).cumsum(0)
        data = torch.frombuffer(bytearray(b"".join(encoded)), dtype=torch.uint8) if offsets[-1] else \
            torch.zeros(0, dtype=torch.uint8)
        name = _shard_name(len(self.shards))
        tmp = self.dir / (name + ".partial")
        save_file({"features": torch.stack(self._feats).contiguous(), "caption_bytes": data,
                   "caption_offsets": offsets},
                  str(tmp), metadata={"views": str(self.views), "model": self.model_name,
                                      "source_end": str(self._ends[-1]), "format": str(FORMAT)})
        tmp.rename(self.dir / name)
        self.shards.append({"file": name, "samples": len(self._captions), "source_end": self._ends[-1]})
        self.samples += len(self._captions)
        self.source_end = self._ends[-1]
        self._feats, self._captions, self._ends = [], [], []

    @property
    def pending(self) -> int:
        return len(self._captions)

    def close(self) -> Path:
        self._flush()
        if not self.samples:
            raise ValueError("no usable samples to cache")
        index = {"format": FORMAT, "views": self.views, "model": self.model_name, "samples": self.samples,
                 "shards": [{"file": s["file"], "samples": s["samples"]} for s in self.shards]}
        (self.dir / INDEX_FILE).write_text(json.dumps(index, indent=1) + "\n")
        self.complete = True
        return self.dir


def build_cache(model, source: Source, transform: TrainTransform, out: str | Path, views: int = 1,
                seed: int = 42, batch_size: int = 32, dtype: torch.dtype = torch.float16, limit: int = 0,
                shard_size: int = SHARD_SIZE) -> Path:
    """A source of (position, image, caption) -> a cache folder, resuming a partial one in ``out``."""
    if transform.crop != "april" and views > 1:
        log.warning("plain-resize transform: all %d views would be identical; storing 1", views)
        views = 1
    writer = CacheWriter(out, views, model.config.name, shard_size, dtype)
    if writer.complete:
        log.info("%s is already a complete cache (%s)", out, INDEX_FILE)
        return writer.dir
    if writer.samples:
        log.info("resuming the cache in %s after %d samples", out, writer.samples)
    device = next(model.vision_model.parameters()).device
    pixels: list[torch.Tensor] = []
    captions: list[str] = []
    ends: list[int] = []

    def flush() -> None:
        if captions:
            x = projection_inputs(model, torch.stack(pixels).to(device))
            writer.add(x.reshape(-1, views, *x.shape[1:]), captions, ends)
            pixels.clear(), captions.clear(), ends.clear()

    index = writer.samples  # seeds the views: the same crops whether or not the build was interrupted
    for end, image, caption in source(writer.source_end):
        if limit and index >= limit:
            break
        pixels.extend(transform(image, sample_rng(seed, view, index)) for view in range(views))
        captions.append(caption)
        ends.append(end)
        index += 1
        if len(captions) >= batch_size:
            flush()
    flush()
    return writer.close()


class FeatureCache(torch.utils.data.Dataset):
    """Map-style dataset over a cache folder; only the shard sizes stay in memory."""

    def __init__(self, path: str | Path, seed: int):
        self.path, self.seed = Path(path), seed
        if not (self.path / INDEX_FILE).is_file():
            raise FileNotFoundError(f"{path}: not a complete feature cache (no {INDEX_FILE}; "
                                    "run `python -m training cache` again to finish it)")
        index = json.loads((self.path / INDEX_FILE).read_text())
        self.views = int(index["views"])
        self.files = [s["file"] for s in index["shards"]]
        counts = [int(s["samples"]) for s in index["shards"]]
        self.starts = [0]
        for n in counts:
            self.starts.append(self.starts[-1] + n)
        with safe_open(str(self.path / self.files[0]), framework="pt") as f:
            self.shape = [self.starts[-1], *f.get_slice("features").get_shape()[1:]]
        self._open: OrderedDict[int, Any] = OrderedDict()  # per process: opened lazily in each worker

    def __len__(self) -> int:
        return self.starts[-1]

    def _shard(self, k: int):
        handle = self._open.pop(k, None) or safe_open(str(self.path / self.files[k]), framework="pt")
        self._open[k] = handle
        while len(self._open) > OPEN_SHARDS:
            self._open.popitem(last=False)
        return handle

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, Any]:
        pass_index, index = item if isinstance(item, tuple) else (0, item)
        k = bisect.bisect_right(self.starts, index) - 1
        row, f = index - self.starts[k], self._shard(k)
        view = sample_rng(self.seed, pass_index, index).randrange(self.views)
        features = f.get_slice("features")[row: row + 1, view: view + 1][0, 0].float()
        a, b = f.get_slice("caption_offsets")[row: row + 2].tolist()
        caption = bytes(f.get_slice("caption_bytes")[a:b].numpy()).decode("utf-8") if b > a else ""
        return {"features": features, "caption": caption, "skipped": 0}

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers open their own handles
        return {**self.__dict__, "_open": OrderedDict()}


def cache_from_config(cfg, out: str | Path, views: int = 1, limit: int = 0, batch_size: int = 64,
                      shard_size: int = SHARD_SIZE) -> Path:
    """Build (or resume) a cache for a run config's data: stage 2 the aligned folder, stage 1 one pass
    over the shards (no resampling). Only the vision side is loaded, on the GPU when present.
    Captions are stored exactly as training would use them."""
    from training.model import load_vision_side

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_vision_side(cfg.model_dir, device)
    vis = model.config
    transform = TrainTransform(vis.vision.image_size, vis.image_mean, vis.image_std, cfg.train_crop)
    if cfg.stage == "stage2":
        folder = Path(cfg.aligned_dir)

        def source(start: int):
            for pos, rec in enumerate(read_annotations(folder)[start:], start + 1):
                if not rec["caption"].strip():
                    continue
                try:
                    image = decode_image((folder / "image" / f"{rec['image_id']}.jpg").read_bytes())
                except Exception as exc:
                    log.warning("skipping %s: %s", rec["image_id"], exc)
                    continue
                yield pos, image, rec["caption"]
    else:
        import itertools

        wds = require("webdataset")
        urls = cfg.laion_shards or cfg.ccsbu_shards

        def source(start: int):
            ds = wds.WebDataset(urls, shardshuffle=False, handler=wds.warn_and_continue)
            for pos, raw in enumerate(itertools.islice(ds, start, None), start + 1):  # skipped: not decoded
                try:
                    meta = json.loads(raw["json"]) if "json" in raw else {"caption": raw["txt"].decode()}
                    caption = clean_caption(str(meta.get("caption") or ""))
                    image = decode_image(raw.get("jpg") or raw["png"])
                except Exception as exc:
                    log.warning("skipping %s: %s", raw.get("__key__"), exc)
                    continue
                if caption:
                    yield pos, image, caption

    return build_cache(model, source, transform, out, views=views, seed=cfg.seed, batch_size=batch_size,
                       limit=limit, shard_size=shard_size)
