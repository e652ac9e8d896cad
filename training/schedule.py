"""The official learning-rate schedule, as a pure function.

Mirrors ``LinearWarmupCosineLRScheduler`` of ``minigpt4/common/optims.py`` (docs/minigpt4-reference.md section 11.3):
the scheduler is called before every iteration with the epoch ``e`` and the iteration ``i`` inside
that epoch; the global step is ``s = e * iters_per_epoch + i`` and the total ``T = max_epoch *
iters_per_epoch``.

* warm-up (``s < warmup_steps``): ``min(init_lr, warmup_lr + (init_lr - warmup_lr) * i /
  max(warmup_steps, 1))`` -- note the *in-epoch* ``i``, faithful to the official code (identical to
  ``s`` whenever warm-up fits in epoch 0, as in both presets);
* afterwards: ``min_lr + (init_lr - min_lr) * 0.5 * (1 + cos(pi * s / T))`` -- the cosine is **not**
  shifted by the warm-up, so the LR drops at the end of warm-up (quirk 11 of the reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleConfig:
    init_lr: float
    min_lr: float
    warmup_lr: float
    warmup_steps: int
    max_epoch: int
    iters_per_epoch: int

    @property
    def total_steps(self) -> int:
        return self.max_epoch * self.iters_per_epoch


def lr_at(cfg: ScheduleConfig, epoch: int, iteration: int) -> float:
    """Learning rate for iteration ``iteration`` of epoch ``epoch`` (both 0-based)."""
    step = epoch * cfg.iters_per_epoch + iteration
    if step < cfg.warmup_steps:
        ramp = (cfg.init_lr - cfg.warmup_lr) * iteration / max(cfg.warmup_steps, 1)
        return min(cfg.init_lr, cfg.warmup_lr + ramp)
    cosine = 0.5 * (1.0 + math.cos(math.pi * step / cfg.total_steps))
    return cfg.min_lr + (cfg.init_lr - cfg.min_lr) * cosine


def lr_at_step(cfg: ScheduleConfig, step: int) -> float:
    """Same as :func:`lr_at` addressed by the global optimizer step."""
    epoch, iteration = divmod(step, cfg.iters_per_epoch)
    return lr_at(cfg, epoch, iteration)
