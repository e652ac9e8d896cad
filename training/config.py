"""Training configuration: one frozen dataclass, two official presets, CLI/TOML overrides.

Presets hold the values of the official ``train_configs/minigpt4_stage1_pretrain.yaml`` and
``minigpt4_stage2_finetune.yaml`` (docs/minigpt4-reference.md section 11). Overrides are generated from the
dataclass fields (``--batch_size=8``); ``--config run.toml`` reads a flat TOML table first.
``validate()`` runs before any Accelerator is built, and the resolved config is saved as JSON next
to every checkpoint and reused on resume.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.minigpt4.prompts import get_template
from training.schedule import ScheduleConfig

STAGES = ("stage1", "stage2")
MIXED_PRECISION = ("no", "fp16", "bf16")
TRAIN_CROPS = ("april", "current")
TRAINABLE_PARTS = ("language_projection", "qformer", "query_tokens", "vision_model", "language_model")


class ConfigError(ValueError):
    """The configuration cannot run; the message lists every problem found."""


@dataclass(frozen=True)
class TrainConfig:
    stage: str = "stage2"
    model_dir: str = ""  # engine model directory: frozen ViT/Q-Former/LLM + tokenizer
    init_from: str = ""  # "" = projection of model_dir; "random" = fresh Linear; or a run/checkpoint dir
    output_dir: str = "runs/minigpt4"
    # data (stage 1: webdataset shards as brace patterns; stage 2: the cc_sbu_align folder)
    laion_shards: str = ""
    ccsbu_shards: str = ""
    sample_ratios: tuple[int, ...] = (115, 14)  # whole-batch mixing LAION : CC/SBU
    aligned_dir: str = ""
    shuffle_buffer: int = 1000
    num_workers: int = 4
    train_crop: str = "april"  # april: RandomResizedCrop(scale 0.5-1) bicubic; current: plain resize
    feature_cache: str = ""  # cached frozen Q-Former outputs (python -m training cache)
    # objective
    use_prompts: bool = True  # stage 2: one alignment prompt per batch; stage 1: none
    prompt_path: str = ""  # one prompt per line with <ImageHere> (official prompt_path); "" = alignment.txt
    prompt_template: str = ""  # "{}" = a prompt (official prompt_template); "" = the model template's
    end_sym: str = "auto"  # auto: stage 1 "\n"; stage 2 the template's train_end_symbol ("###" or "</s>")
    max_txt_len: int = 160
    # optimisation
    batch_size: int = 12  # per device
    grad_accum: int = 1
    max_epoch: int = 5
    iters_per_epoch: int = 200  # optimizer steps per "epoch" (the official inner loop)
    init_lr: float = 3e-5
    min_lr: float = 1e-5
    warmup_lr: float = 1e-6
    warmup_steps: int = 200
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.999
    adam_eps: float = 1e-8
    max_grad_norm: float = 0.0  # 0 = no clipping (official)
    mixed_precision: str = "bf16"  # official: fp16 AMP + GradScaler ("fp16"); bf16 needs no scaler
    seed: int = 42  # each rank uses seed + rank, as official
    trainable: tuple[str, ...] = ("language_projection",)  # others are for research only
    attn_implementation: str = "sdpa"
    # logging and checkpoints
    log_every: int = 10
    save_every: int = 0  # optimizer steps between checkpoints; 0 = at the end of every epoch
    max_steps: int = 0  # stop after this many optimizer steps (smoke runs); 0 = whole schedule
    resume: str = ""  # a checkpoint directory written by this trainer
    tensorboard: bool = True
    progress: bool = True
    cpu: bool = False

    # -- derived values -------------------------------------------------------------------------
    @property
    def schedule(self) -> ScheduleConfig:
        return ScheduleConfig(self.init_lr, self.min_lr, self.warmup_lr, self.warmup_steps,
                              self.max_epoch, self.iters_per_epoch)

    @property
    def total_steps(self) -> int:
        full = self.max_epoch * self.iters_per_epoch
        return min(full, self.max_steps) if self.max_steps else full

    def resolved_end_sym(self, template: str) -> str:
        if self.end_sym != "auto":
            return self.end_sym
        if self.stage == "stage1":
            return "\n"
        return get_template(template).train_end_symbol

    def validate(self, *, need_data: bool = True) -> TrainConfig:
        problems = _problems(self, need_data)
        if problems:
            raise ConfigError("invalid training configuration:\n  - " + "\n  - ".join(problems))
        return self

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown training config fields: {unknown}")
        return cls(**{k: _coerce(cls, k, v) for k, v in data.items()})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _problems(cfg: TrainConfig, need_data: bool) -> list[str]:
    p: list[str] = []
    if cfg.stage not in STAGES:
        p.append(f"stage must be one of {STAGES}, got {cfg.stage!r}")
    if cfg.mixed_precision not in MIXED_PRECISION:
        p.append(f"mixed_precision must be one of {MIXED_PRECISION}")
    if cfg.train_crop not in TRAIN_CROPS:
        p.append(f"train_crop must be one of {TRAIN_CROPS}")
    bad = sorted(set(cfg.trainable) - set(TRAINABLE_PARTS))
    if bad or not cfg.trainable:
        p.append(f"trainable must be a non-empty subset of {TRAINABLE_PARTS}, got {cfg.trainable}")
    for name in ("batch_size", "grad_accum", "max_epoch", "iters_per_epoch", "max_txt_len"):
        if getattr(cfg, name) < 1:
            p.append(f"{name} must be >= 1")
    if min(cfg.warmup_steps, cfg.max_steps, cfg.save_every, cfg.num_workers) < 0:
        p.append("warmup_steps, max_steps, save_every and num_workers must be >= 0")
    if not 0 < cfg.min_lr <= cfg.init_lr or not 0 <= cfg.warmup_lr <= cfg.init_lr:
        p.append("need 0 < min_lr <= init_lr and 0 <= warmup_lr <= init_lr")
    if not (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1) or cfg.weight_decay < 0:
        p.append("betas must be in [0, 1) and weight_decay >= 0")
    if not cfg.model_dir:
        p.append("model_dir is required (an engine model directory, see `python -m engine convert`)")
    elif not (Path(cfg.model_dir) / "lumen_model.json").is_file():
        p.append(f"model_dir {cfg.model_dir!r} is not an engine model directory (no lumen_model.json)")
    if cfg.init_from not in ("", "random") and not Path(cfg.init_from).exists():
        p.append(f"init_from {cfg.init_from!r} does not exist")
    if cfg.resume and not (Path(cfg.resume) / "trainer_state.json").is_file():
        p.append(f"resume {cfg.resume!r} is not a checkpoint directory of this trainer")
    if cfg.prompt_path and not Path(cfg.prompt_path).is_file():
        p.append(f"prompt_path {cfg.prompt_path!r} not found")
    if cfg.prompt_template and "{}" not in cfg.prompt_template:
        p.append("prompt_template must contain {} where the prompt goes")
    if need_data:
        p.extend(_data_problems(cfg))
    return p


def _data_problems(cfg: TrainConfig) -> list[str]:
    if cfg.feature_cache:  # one cache, or "laion,ccsbu" mixed by sample_ratios
        paths = cfg.feature_cache.split(",")
        p = [f"feature_cache {path!r} is not a complete feature cache (no index.json; see `python -m training cache`)"
             for path in paths if not (Path(path) / "index.json").is_file()]
        if len(paths) > 1 and len(paths) != len(cfg.sample_ratios):
            p.append(f"{len(paths)} feature caches need {len(paths)} sample_ratios, got {cfg.sample_ratios}")
        return p
    if cfg.stage == "stage1":
        p = [] if cfg.laion_shards or cfg.ccsbu_shards else ["stage 1 needs laion_shards and/or ccsbu_shards"]
        if cfg.laion_shards and cfg.ccsbu_shards and (len(cfg.sample_ratios) != 2 or min(cfg.sample_ratios) <= 0):
            p.append("sample_ratios must be two positive numbers (LAION, CC/SBU)")
        return p
    if not cfg.aligned_dir:
        return ["stage 2 needs aligned_dir (the cc_sbu_align folder)"]
    if not (Path(cfg.aligned_dir) / "filter_cap.json").is_file():
        return [f"{cfg.aligned_dir!r} has no filter_cap.json"]
    return []


# -- presets: the official values --------------------------------------------------------------
def stage1(**overrides: Any) -> TrainConfig:
    """``minigpt4_stage1_pretrain.yaml``: 4 x 5000 iterations, 64 per GPU on 4 GPUs (global 256)."""
    base = TrainConfig(
        stage="stage1", init_from="random", output_dir="runs/stage1", use_prompts=False,
        max_txt_len=32, batch_size=64, max_epoch=4, iters_per_epoch=5000, init_lr=1e-4, min_lr=8e-5,
        warmup_lr=1e-6, warmup_steps=5000, weight_decay=0.05,
    )
    return dataclasses.replace(base, **overrides)


def stage2(**overrides: Any) -> TrainConfig:
    """``minigpt4_stage2_finetune.yaml``: 5 x 200 iterations, batch 12 on one GPU."""
    base = TrainConfig(
        stage="stage2", output_dir="runs/stage2", use_prompts=True, max_txt_len=160, batch_size=12,
        max_epoch=5, iters_per_epoch=200, init_lr=3e-5, min_lr=1e-5, warmup_lr=1e-6,
        warmup_steps=200, weight_decay=0.05,
    )
    return dataclasses.replace(base, **overrides)


def stage2_paper(**overrides: Any) -> TrainConfig:
    """The paper's stage 2 (section 3.3: 400 steps at batch 12): 2 x 200 iterations, same LRs.

    The released config runs 1000 iterations; which one produced the released weights is unknown
    (docs/performance.md section 6), so both are offered.
    """
    return stage2(**{"max_epoch": 2, **overrides})


PRESETS = {"stage1": stage1, "stage2": stage2, "stage2-paper": stage2_paper}


# -- command line ------------------------------------------------------------------------------
def _coerce(cls: type, name: str, value: Any) -> Any:
    hint = typing.get_type_hints(cls)[name]
    if hint is bool:
        if isinstance(value, str):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ConfigError(f"--{name} expects true/false, got {value!r}")
            return value.lower() in ("1", "true", "yes")
        return bool(value)
    if typing.get_origin(hint) is tuple:
        inner = typing.get_args(hint)[0]
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(inner(str(v).strip()) for v in items if str(v).strip())
    try:
        return hint(value) if hint in (int, float, str) else value
    except ValueError as exc:
        raise ConfigError(f"--{name}: {exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file with field = value lines, applied before the flags")
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else None
        parser.add_argument(f"--{f.name}", default=None, metavar="VALUE",
                            help=f"(preset default: {default!r})")


def from_args(preset: str, args: argparse.Namespace) -> TrainConfig:
    """Preset values, then the TOML file, then ``--field=value`` flags."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        with open(args.config, "rb") as fh:
            values.update(tomllib.load(fh))
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = v
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown training config fields: {unknown}")
    return PRESETS[preset](**{k: _coerce(TrainConfig, k, v) for k, v in values.items()})

