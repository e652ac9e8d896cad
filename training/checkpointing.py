"""Checkpoints written by training, resume, and export into the engine's model directory.

A checkpoint directory (``<output_dir>/checkpoint-<step>/``) holds:

* ``trainable.safetensors``: the trained tensors only (by default ``language_projection.*``; the
  official trainer also saves only trainable tensors, docs/minigpt4-reference.md section 12.3), in float32;
* ``config.json``: the resolved ``TrainConfig``;
* ``trainer_state.json``: optimizer step, epoch/iteration, LR, skipped-sample count, world size;
* ``optimizer.pt`` (AdamW state, both groups) and ``scaler.pt`` (fp16 GradScaler, if any): plain
  tensors/numbers, loadable with ``torch.load(weights_only=True)``;
* ``rng_state_<rank>.pt``: torch/python RNG state of every rank;
* ``data_state_<rank>.json`` (stage 1 from shards): where each rank's shard streams stand (raw
  samples consumed per source and logical stream, see ``training.shards``).

Stage-2 and feature-cache batches are a pure function of (seed, step) (see ``training.data``);
stage-1 shard streams are positioned from ``data_state_<rank>.json``. Either way, resuming at step
``s`` replays exactly what an uninterrupted run would see.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)

TRAINABLE_FILE = "trainable.safetensors"
STATE_FILE = "trainer_state.json"


@dataclass(frozen=True)
class TrainerState:
    step: int  # optimizer steps completed
    lr: float
    skipped_samples: int
    world_size: int
    last_loss: float | None = None


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / f"checkpoint-{step:06d}"


def save(path: Path, *, trainable: dict[str, torch.Tensor], optimizer_state: dict | None, config,
         state: TrainerState, rank: int, scaler_state: dict | None = None, is_main: bool = True) -> Path:
    """Every rank writes its RNG state; the main rank writes the rest (atomically, via a temp dir)."""
    path = Path(path)
    if is_main:
        tmp = path.with_name(path.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({k: v.float().contiguous() for k, v in trainable.items()}, str(tmp / TRAINABLE_FILE))
        config.save(tmp / "config.json")
        (tmp / STATE_FILE).write_text(json.dumps(state.__dict__, indent=2) + "\n")
        if optimizer_state is not None:
            torch.save(optimizer_state, tmp / "optimizer.pt")
        if scaler_state is not None:
            torch.save(scaler_state, tmp / "scaler.pt")
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    return path


def save_rng(path: Path, rank: int) -> None:
    rng = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
           "python_version": random.getstate()[0], "python_gauss": random.getstate()[2]}
    torch.save(rng, Path(path) / f"rng_state_{rank}.pt")


def load_rng(path: Path, rank: int) -> None:
    file = Path(path) / f"rng_state_{rank}.pt"
    if not file.is_file():
        log.warning("%s missing: RNG state not restored for rank %d", file, rank)
        return
    rng = torch.load(file, weights_only=True)
    torch.set_rng_state(rng["torch"])
    random.setstate((rng["python_version"], tuple(rng["python"]), rng["python_gauss"]))


def save_data_state(path: Path, rank: int, state: dict | None) -> None:
    if state is not None:
        (Path(path) / f"data_state_{rank}.json").write_text(json.dumps(state, indent=1) + "\n")


def load_data_state(path: str | Path, rank: int) -> dict | None:
    file = Path(path) / f"data_state_{rank}.json"
    return json.loads(file.read_text()) if file.is_file() else None


def load_state(path: str | Path) -> TrainerState:
    return TrainerState(**json.loads((Path(path) / STATE_FILE).read_text()))


def load_trainable(path: str | Path) -> dict[str, torch.Tensor]:
    """Trained tensors from a checkpoint directory, a ``trainable.safetensors`` file, an official
    projection checkpoint (``pretrained_minigpt4*.pth``: ``{'model': {'llama_proj.*'}}``) or an engine
    model directory (its ``language_projection.*``)."""
    path = Path(path)
    if path.is_dir() and (path / TRAINABLE_FILE).is_file():
        return load_file(str(path / TRAINABLE_FILE))
    if path.is_file() and path.suffix == ".safetensors":
        return load_file(str(path))
    from engine.minigpt4.converter import PROJECTION_RULES, VISUAL_FILE, ConversionReport, apply_rules, load_state_dict

    if path.is_file():  # official .pth: tensors only (weights_only), llama_proj.* -> language_projection.*
        found = apply_rules(load_state_dict(path), PROJECTION_RULES, str(path), ConversionReport())
        if not found:
            raise ValueError(f"{path}: no llama_proj.weight/bias (not a MiniGPT-4 projection checkpoint)")
        return found
    if (path / VISUAL_FILE).is_file():
        visual = load_file(str(path / VISUAL_FILE))
        return {k: v for k, v in visual.items() if k.startswith("language_projection.")}
    raise FileNotFoundError(f"{path}: neither a training checkpoint nor a model directory")


def load_optimizer(path: str | Path) -> tuple[dict | None, dict | None]:
    path = Path(path)
    opt = torch.load(path / "optimizer.pt", weights_only=True) if (path / "optimizer.pt").is_file() else None
    scaler = torch.load(path / "scaler.pt", weights_only=True) if (path / "scaler.pt").is_file() else None
    return opt, scaler


def export_official(checkpoint: str | Path, out_file: str | Path) -> Path:
    """A checkpoint's projection in the official format, loadable as MiniGPT-4's ``ckpt:`` (float32)."""
    trained = load_trainable(checkpoint)
    extra = sorted(k for k in trained if not k.startswith("language_projection."))
    if extra:
        raise ValueError(f"the official format holds only the projection; this checkpoint also trained {extra[:3]}")
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {f"llama_proj.{k.rsplit('.', 1)[1]}": v.contiguous() for k, v in trained.items()}}, out)
    return out


def export_model_dir(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """A checkpoint -> an engine model directory: the run's base ``model_dir`` with the trained tensors in.

    Frozen tensors keep their files and dtypes (the LLM folder and tokenizer are copied, untrained
    visual tensors are taken over unchanged from the base ``visual.safetensors``); trained tensors are
    stored as trained (float32). ``lumen_model.json`` records where it came from (``sources.training``).
    A checkpoint that trained the LLM too is re-serialised through the model instead.
    """
    from engine.minigpt4.converter import LLM_DIR, MODEL_JSON, TOKENIZER_FILE, VISUAL_FILE

    from training.config import TrainConfig

    checkpoint = Path(checkpoint)
    cfg = TrainConfig.load(checkpoint / "config.json")
    state = load_state(checkpoint)
    base = Path(cfg.model_dir)
    trained = load_trainable(checkpoint)
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if any(k.startswith("language_model.") for k in trained):
        from training.model import load_for_training

        model, tok = load_for_training(base)
        model.load_state_dict(trained, strict=False)
        from engine.minigpt4.converter import save_model_dir

        save_model_dir(model, model.config, tok.model_file, tmp)
    else:
        visual = load_file(str(base / VISUAL_FILE))
        unknown = sorted(set(trained) - set(visual))
        if unknown:
            raise ValueError(f"{checkpoint}: tensors {unknown[:3]} are not in {base / VISUAL_FILE}")
        visual.update({k: v.contiguous() for k, v in trained.items()})
        save_file(visual, str(tmp / VISUAL_FILE))
        shutil.copytree(base / LLM_DIR, tmp / LLM_DIR)
        shutil.copyfile(base / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
    meta = json.loads((base / MODEL_JSON).read_text())  # the base's description, plus where this came from
    meta["sources"] = {**meta.get("sources", {}), "training": {
        "checkpoint": str(checkpoint.resolve()), "stage": cfg.stage, "step": state.step,
        "world_size": state.world_size, "last_loss": state.last_loss, "base_model_dir": str(base.resolve()),
        "init_from": cfg.init_from, "trained": sorted(trained), "config": cfg.to_dict()}}
    meta["notes"] = f"trained by `python -m training {cfg.stage}` ({state.step} steps) from {base.name}"
    (tmp / MODEL_JSON).write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
