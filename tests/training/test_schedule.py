"""The LR schedule equals the official formula at every step of both presets and the fixture values."""

from __future__ import annotations

import json
import math

import pytest

from training import config
from training.schedule import ScheduleConfig, lr_at, lr_at_step


def official(cfg: ScheduleConfig, epoch: int, i: int) -> float:
    """Transcription of minigpt4/common/optims.py (LinearWarmupCosineLRScheduler.step)."""
    total_cur_step = epoch * cfg.iters_per_epoch + i
    if total_cur_step < cfg.warmup_steps:  # warmup_lr_schedule(step=cur_step, ...)
        return min(cfg.init_lr, cfg.warmup_lr + (cfg.init_lr - cfg.warmup_lr) * i / max(cfg.warmup_steps, 1))
    max_epoch = cfg.max_epoch * cfg.iters_per_epoch  # cosine_lr_schedule(epoch=total_cur_step, ...)
    return (cfg.init_lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * total_cur_step / max_epoch)) + cfg.min_lr


@pytest.mark.parametrize("preset", ["stage1", "stage2", "stage2-paper"])
def test_every_step_of_each_preset_matches_the_official_formula(preset: str) -> None:
    cfg = config.PRESETS[preset]().schedule
    for epoch in range(cfg.max_epoch):
        for i in range(cfg.iters_per_epoch):
            got = lr_at(cfg, epoch, i)
            assert got == official(cfg, epoch, i), (epoch, i)
            assert lr_at_step(cfg, epoch * cfg.iters_per_epoch + i) == got


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_manifest_samples(reference_dir, stage: str) -> None:
    sched = json.loads((reference_dir / "manifest.json").read_text())["lr_schedule"][stage]
    c = sched["config"]
    ours = config.PRESETS[stage]().schedule
    assert ours == ScheduleConfig(c["init_lr"], c["min_lr"], c["warmup_lr"], c["warmup_steps"],
                                  c["max_epoch"], c["iters_per_epoch"])
    assert len(sched["points_epoch_iter_lr"]) >= 20
    for epoch, i, want in sched["points_epoch_iter_lr"]:
        assert lr_at(ours, epoch, i) == pytest.approx(want, rel=1e-12, abs=1e-18)


def test_cosine_is_not_shifted_by_the_warmup() -> None:
    s2 = config.stage2().schedule
    assert lr_at_step(s2, 199) == pytest.approx(2.9855e-05)
    assert lr_at_step(s2, 200) == pytest.approx(2.8090169943749472e-05)  # drop, not 3e-5
    assert lr_at_step(s2, s2.total_steps - 1) == pytest.approx(1e-5, rel=1e-5)


def test_warmup_uses_the_in_epoch_iteration_like_the_official_code() -> None:
    cfg = ScheduleConfig(1.0, 0.1, 0.0, warmup_steps=10, max_epoch=3, iters_per_epoch=4)
    # global step 5 is still warm-up, but epoch 1 / iteration 1 ramps from i=1, not 5
    assert lr_at(cfg, 1, 1) == pytest.approx(0.1)
