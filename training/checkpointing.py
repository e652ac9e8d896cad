"""Checkpoints written by training, resume, and export into the engine's model directory.

A checkpoint directory (``<output_dir>/checkpoint-<step>/``) holds:

* ``trainable.safetensors``: the trained tensors only (by default ``language_projection.*``; the
  official trainer also saves only trainable tensors, reference section 12.3), in float32;
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
    """Trained tensors from a checkpoint directory, a ``trainable.safetensors`` file, or an engine
    model directory (its ``language_projection.*``)."""
    path = Path(path)
    if path.is_dir() and (path / TRAINABLE_FILE).is_file():
        return load_file(str(path / TRAINABLE_FILE))
    if path.is_file() and path.suffix == ".safetensors":
        return load_file(str(path))
    from engine.checkpoints import VISUAL_FILE

    if (path / VISUAL_FILE).is_file():
        visual = load_file(str(path / VISUAL_FILE))
        return {k: v for k, v in visual.items() if k.startswith("language_projection.")}
    raise FileNotFoundError(f"{path}: neither a training checkpoint nor a model directory")


def load_optimizer(path: str | Path) -> tuple[dict | None, dict | None]:
    path = Path(path)
    opt = torch.load(path / "optimizer.pt", weights_only=True) if (path / "optimizer.pt").is_file() else None
    scaler = torch.load(path / "scaler.pt", weights_only=True) if (path / "scaler.pt").is_file() else None
    return opt, scaler


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = sorted(Path(output_dir).glob("checkpoint-*[0-9]"))
    return found[-1] if found else None


def export_model_dir(model, tokenizer_file: Path, out_dir: str | Path, notes: str | None = None,
                     base_model_dir: str | Path | None = None) -> Path:
    """Write the trained model as an engine model directory (``engine.checkpoints.save_model_dir``).

    When only the projection trained and ``base_model_dir`` is given, the frozen LLM is copied from
    there instead of being re-serialised (fast, and bit-identical).
    """
    from engine.checkpoints import LLM_DIR, TOKENIZER_FILE, VISUAL_FILE, save_model_dir, write_model_json

    out = Path(out_dir)
    llm_trained = any(p.requires_grad for p in model.language_model.parameters())
    if base_model_dir is not None and not llm_trained:
        out.mkdir(parents=True, exist_ok=True)
        visual = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()
                  if not k.startswith("language_model.")}
        save_file(visual, str(out / VISUAL_FILE))
        shutil.copytree(Path(base_model_dir) / LLM_DIR, out / LLM_DIR, dirs_exist_ok=True)
        shutil.copyfile(tokenizer_file, out / TOKENIZER_FILE)
        write_model_json(out, model.config, notes=notes)
    else:
        save_model_dir(model, model.config, Path(tokenizer_file), out, notes=notes)
    return out
