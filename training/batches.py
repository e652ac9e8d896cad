"""The endless batch stream of one rank for a run: stage-2 folders, feature caches and stage-1 shards
assembled from the primitives in ``training.data``, ``training.features`` and ``training.shards``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from training.data import AlignedDataset, Batch, EpochBatchSampler, MixedBatches, TrainTransform, collate
from training.features import FeatureCache
from training.shards import ShardBatches


def _loader(dataset, batch_size: int, seed: int, rank: int, world: int, start_batch: int, workers: int):
    sampler = EpochBatchSampler(len(dataset), batch_size, seed, rank, world, start_batch)
    return iter(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                            num_workers=workers, persistent_workers=workers > 0))


def build_batches(cfg, image_size: int, mean, std, rank: int, world: int, start_step: int,
                  data_state: dict[str, Any] | None = None) -> Iterator[Batch]:
    """The endless batch stream of one rank, positioned at optimizer step ``start_step``.

    Stage 2 and feature caches are positioned by the step alone; stage-1 shards also need the
    checkpoint's ``data_state`` (``training.shards``: the returned stream has ``state()``)."""
    start = start_step * cfg.grad_accum  # micro-batches already consumed
    transform = TrainTransform(image_size, tuple(mean), tuple(std), cfg.train_crop)
    if cfg.feature_cache:
        datasets = [FeatureCache(p, cfg.seed) for p in cfg.feature_cache.split(",")]
    elif cfg.stage == "stage2":
        datasets = [AlignedDataset(cfg.aligned_dir, transform, cfg.seed)]
    else:
        return ShardBatches(cfg, transform, rank, world, start_step, data_state)
    if len(datasets) == 1:
        return _loader(datasets[0], cfg.batch_size, cfg.seed, rank, world, start, cfg.num_workers)
    used = MixedBatches.consumed_per_source(cfg.sample_ratios, cfg.seed, start, rank)
    loaders = [_loader(d, cfg.batch_size, cfg.seed, rank, world, u, cfg.num_workers)
               for d, u in zip(datasets, used)]
    return MixedBatches(loaders, cfg.sample_ratios, cfg.seed, start, rank)
