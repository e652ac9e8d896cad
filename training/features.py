"""Optional cache of the frozen vision side (ViT + ln_vision + Q-Former outputs).

Everything before ``language_projection`` is frozen, so its output can be computed once and reused
(performance.md section 5: removes the ViT/Q-Former FLOPs and all JPEG decoding). The cache is one
safetensors file: ``features`` (N, views, tokens, dim) -- the exact input of the projection (the
Q-Former output, or the 4-grouped ViT tokens without Q-Former) -- plus the captions in the metadata.
With the April random crop, store several ``views`` per image (stage 2: 4-8); a training sample
then picks one view per pass, seeded like the on-the-fly crops.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from training.data import TrainTransform, sample_rng

log = logging.getLogger(__name__)


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


def build_cache(model, pairs: Iterable[tuple[Image.Image, str]], transform: TrainTransform, out: str | Path,
                views: int = 1, seed: int = 42, batch_size: int = 32, dtype: torch.dtype = torch.float16) -> Path:
    """(image, caption) pairs -> a feature cache file. Views use the training crop RNG."""
    if transform.crop != "april" and views > 1:
        log.warning("plain-resize transform: all %d views would be identical; storing 1", views)
        views = 1
    feats: list[torch.Tensor] = []
    captions: list[str] = []
    pending: list[torch.Tensor] = []

    def flush() -> None:
        if pending:
            device = next(model.vision_model.parameters()).device
            x = projection_inputs(model, torch.stack(pending).to(device))
            feats.append(x.to("cpu", dtype).reshape(-1, views, *x.shape[1:]))
            pending.clear()

    for index, (image, caption) in enumerate(pairs):
        captions.append(caption)
        pending.extend(transform(image, sample_rng(seed, view, index)) for view in range(views))
        if len(pending) >= batch_size * views:
            flush()
    flush()
    if not captions:
        raise ValueError("no usable samples to cache")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"captions": json.dumps(captions), "views": str(views), "model": model.config.name}
    save_file({"features": torch.cat(feats).contiguous()}, str(out), metadata=meta)
    return out


class FeatureCache(torch.utils.data.Dataset):
    """Map-style dataset over a cache file; items are read lazily (memory-mapped)."""

    def __init__(self, path: str | Path, seed: int):
        self.path, self.seed = str(path), seed
        with safe_open(self.path, framework="pt") as f:
            meta = f.metadata()
            self.shape = f.get_slice("features").get_shape()
        self.captions = json.loads(meta["captions"])
        self.views = int(meta["views"])
        self._file: Any = None

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        pass_index, index = item if isinstance(item, tuple) else (0, item)
        if self._file is None:  # opened lazily: one handle per DataLoader worker
            self._file = safe_open(self.path, framework="pt")
        view = sample_rng(self.seed, pass_index, index).randrange(self.views)
        row = self._file.get_slice("features")[index: index + 1, view: view + 1]
        return {"features": row[0, 0].float(), "caption": self.captions[index], "skipped": 0}


def cache_from_config(cfg, out: str | Path, views: int = 1, limit: int = 0) -> Path:
    """Build a cache for a run config's data (stage 2: the aligned folder; stage 1: one pass over the
    shards, no resampling). Captions are stored exactly as training would use them."""
    import itertools

    from training.data import clean_caption, decode_image, read_annotations
    from training.model import load_for_training

    model, _ = load_for_training(cfg.model_dir)
    model.eval()
    vis = model.config
    transform = TrainTransform(vis.vision.image_size, vis.image_mean, vis.image_std, cfg.train_crop)
    if cfg.stage == "stage2":
        folder = Path(cfg.aligned_dir)

        def pairs():
            for rec in read_annotations(folder):
                try:
                    image = decode_image((folder / "image" / f"{rec['image_id']}.jpg").read_bytes())
                except Exception as exc:
                    log.warning("skipping %s: %s", rec["image_id"], exc)
                    continue
                if rec["caption"].strip():
                    yield image, rec["caption"]
    else:
        from training.data import require

        wds = require("webdataset")
        urls = cfg.laion_shards or cfg.ccsbu_shards

        def pairs():
            ds = wds.WebDataset(urls, shardshuffle=False, handler=wds.warn_and_continue)
            for raw in ds:
                try:
                    caption = clean_caption(json.loads(raw["json"])["caption"])
                    image = decode_image(raw.get("jpg") or raw["png"])
                except Exception as exc:
                    log.warning("skipping %s: %s", raw.get("__key__"), exc)
                    continue
                if caption:
                    yield image, caption

    source = itertools.islice(pairs(), limit) if limit else pairs()
    return build_cache(model, source, transform, out, views=views, seed=cfg.seed)
