"""Training data: stage-1 webdataset shards, the stage-2 aligned folder, transforms, batching.

Official behaviour mirrored here (docs/minigpt4-reference.md sections 10, 11):
* stage 1 (``laion_dataset.py``/``cc_sbu_dataset.py``): shards resampled with replacement forever,
  a 1000-sample shuffle buffer, key ``jpg`` + ``json['caption']``, broken samples skipped (the
  stream, seeded so that it resumes exactly, is ``training.shards``); each iteration draws a
  **whole batch** from LAION or CC/SBU with probability 115:14 (``MultiIterLoader``); captions
  cleaned by ``BlipCaptionProcessor``;
* stage 2 (``cc_sbu_dataset.CCSBUAlignDataset``): ``filter_cap.json`` + ``image/<id>.jpg``, raw
  captions, shuffled, ``drop_last``, cycled;
* train transform: April 2023 ``RandomResizedCrop(224, scale=(0.5, 1))`` bicubic (what trained the
  released weights) or the current plain resize; both end in the engine's eval transform.

Bad samples (unreadable image, empty caption) never stop a run: they are skipped and counted, and
the count travels with the batch (``Batch.skipped``) so the main process can log it even when the
samples were decoded in DataLoader workers.
"""

from __future__ import annotations

import io
import json
import logging
import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from engine.minigpt4 import image_processing  # the engine owns preprocessing (no second copy)

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def require(module: str) -> Any:
    """Import a training-only dependency or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is needed for training: pip install 'lumen-assistant[train]'") from exc


# -- text --------------------------------------------------------------------------------------
def clean_caption(caption: str, max_words: int = 50) -> str:
    """Stage-1 caption cleaner (LAVIS ``BlipCaptionProcessor.pre_caption``): lower case, punctuation
    to spaces, runs of spaces to one, at most ``max_words`` words."""
    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption)
    caption = caption.rstrip("\n").strip(" ")
    words = caption.split(" ")
    if len(words) > max_words:
        caption = " ".join(words[:max_words])
    return caption


# -- images ------------------------------------------------------------------------------------
def random_resized_crop_box(width: int, height: int, rng: random.Random,
                            scale: tuple[float, float] = (0.5, 1.0),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision ``RandomResizedCrop.get_params`` (10 tries, then a centre crop) -> (left, top, w, h)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, width - w), rng.randint(0, height - h), w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


@dataclass(frozen=True)
class TrainTransform:
    """PIL RGB image -> (3, S, S) tensor. ``crop='april'`` adds the random resized crop."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop: str = "april"

    def __call__(self, image: Image.Image, rng: random.Random) -> torch.Tensor:
        if self.crop == "april":
            left, top, w, h = random_resized_crop_box(image.width, image.height, rng)
            image = image.crop((left, top, left + w, top + h))
        return eval_transform(image, self.image_size, self.mean, self.std)


def eval_transform(image: Image.Image, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """The official eval transform; the engine's implementation is the one used when it is present."""

    return image_processing.preprocess([image], size, mean, std)[0]


def decode_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


# -- batches -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Batch:
    """``pixel_values`` (B,3,S,S) or ``features`` (B,n,d) from a feature cache; raw ``captions``."""

    captions: tuple[str, ...]
    pixel_values: torch.Tensor | None = None
    features: torch.Tensor | None = None
    skipped: int = 0  # bad samples dropped while this batch was assembled
    keys: tuple[str, ...] = ()  # sample keys (shard ``__key__`` / aligned ``image_id``), for logs and tests
    origin: tuple[int, int] | None = None  # stage-1 shards: (logical stream, raw samples it has consumed)

    def __len__(self) -> int:
        return len(self.captions)


def collate(samples: list[dict[str, Any]]) -> Batch:
    key = "features" if "features" in samples[0] else "pixel_values"
    return Batch(captions=tuple(s["caption"] for s in samples), keys=tuple(s.get("key", "") for s in samples),
                 skipped=sum(s.get("skipped", 0) for s in samples),
                 **{key: torch.stack([s[key] for s in samples])})


def sample_rng(seed: int, *parts: int) -> random.Random:
    """A per-sample RNG that depends only on its coordinates, so resumed runs see the same crops."""
    return random.Random(hash((seed, *parts)) & 0xFFFFFFFFFFFF)


# -- stage 2: the aligned folder ----------------------------------------------------------------
def read_annotations(folder: Path) -> list[dict[str, str]]:
    data = json.loads((folder / "filter_cap.json").read_text(encoding="utf-8"))
    records = data["annotations"] if isinstance(data, dict) else data
    return [{"image_id": str(r["image_id"]), "caption": str(r.get("caption", ""))} for r in records]


class AlignedDataset(torch.utils.data.Dataset):
    """``cc_sbu_align``: map-style; a bad record is replaced by the next good one and counted."""

    def __init__(self, folder: str | Path, transform: TrainTransform, seed: int, caption_fn: Callable[[str], str] = str):
        self.folder = Path(folder)
        self.records = read_annotations(self.folder)
        self.transform, self.seed, self.caption_fn = transform, seed, caption_fn
        self.pass_index = 0  # set by the sampler so crops differ between passes but not between runs

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> dict[str, Any] | None:
        rec = self.records[index]
        caption = self.caption_fn(rec["caption"])
        if not caption.strip():
            log.warning("skipping %s: empty caption", rec["image_id"])
            return None
        try:
            image = decode_image((self.folder / "image" / f"{rec['image_id']}.jpg").read_bytes())
        except Exception as exc:  # any unreadable/corrupt/missing image is skipped, never fatal
            log.warning("skipping %s: %s", rec["image_id"], exc)
            return None
        rng = sample_rng(self.seed, self.pass_index, index)
        return {"pixel_values": self.transform(image, rng), "caption": caption, "key": rec["image_id"]}

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, Any]:
        pass_index, index = item if isinstance(item, tuple) else (self.pass_index, item)
        self.pass_index = pass_index
        for skipped in range(len(self.records)):
            sample = self.load((index + skipped) % len(self.records))
            if sample is not None:
                return {**sample, "skipped": skipped}
        raise RuntimeError(f"no usable sample in {self.folder}")


class EpochBatchSampler(torch.utils.data.Sampler):
    """Deterministic shuffled batches for one rank, cycled forever, resumable at any batch.

    Pass ``p`` is a permutation seeded by ``seed + p`` (``DistributedSampler(shuffle=True)`` with
    ``set_epoch(p)`` semantics: padded to a multiple of the world size, then ``rank::world``), cut
    into full batches (``drop_last=True``). Items are ``(pass, index)`` so the dataset can seed crops.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start_batch: int = 0):
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.start_batch = start_batch
        per_rank = math.ceil(n / world)
        self.batches_per_pass = per_rank // batch_size
        if self.batches_per_pass == 0:
            raise ValueError(f"{n} samples cannot fill one batch of {batch_size} per rank on {world} ranks")

    def pass_batches(self, p: int) -> list[list[tuple[int, int]]]:
        g = torch.Generator().manual_seed(self.seed + p)
        order = torch.randperm(self.n, generator=g).tolist()
        total = math.ceil(self.n / self.world) * self.world
        order = (order + order[: total - self.n])[self.rank::self.world]
        bs = self.batch_size
        return [[(p, i) for i in order[b * bs:(b + 1) * bs]] for b in range(self.batches_per_pass)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        p, offset = divmod(self.start_batch, self.batches_per_pass)
        while True:
            yield from self.pass_batches(p)[offset:]
            p, offset = p + 1, 0


# -- mixing sources -----------------------------------------------------------------------------
class MixedBatches:
    """Each step takes a whole batch from one source, chosen with probability ~ ratio (official
    ``MultiIterLoader``). As there, every rank draws its own choice (the official RNG is seeded
    with seed + rank), so one step mixes sources across GPUs; the choice RNG is seeded by
    (seed, rank, step) so a resumed run chooses the same."""

    def __init__(self, sources: Sequence[Iterator[Batch]], ratios: Sequence[float], seed: int, start_step: int = 0,
                 rank: int = 0):
        self.sources, self.ratios, self.seed, self.step, self.rank = list(sources), list(ratios), seed, start_step, rank

    def __iter__(self) -> MixedBatches:
        return self

    def __next__(self) -> Batch:
        rng = _choice_rng(self.seed, self.rank, self.step)
        self.step += 1
        return next(rng.choices(self.sources, weights=self.ratios, k=1)[0])

    @staticmethod
    def consumed_per_source(ratios: Sequence[float], seed: int, steps: int, rank: int) -> list[int]:
        """How many batches each source gave this rank in its first ``steps`` mixed steps (for exact resume)."""
        counts = [0] * len(ratios)
        for step in range(steps):
            rng = _choice_rng(seed, rank, step)
            counts[rng.choices(range(len(ratios)), weights=ratios, k=1)[0]] += 1
        return counts


def _choice_rng(seed: int, rank: int, step: int) -> random.Random:
    return sample_rng(seed, -1, rank, step)
