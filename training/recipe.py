"""The one training loop (both stages): build -> prepare(accelerator) -> train -> save -> export.

Faithful to the official ``RunnerBase.train_epoch`` (docs/minigpt4-reference.md section 11): the LR is set from the
(epoch, iteration) schedule before every optimizer step, AdamW with two parameter groups, only the
projection trains, frozen parts stay in eval mode, seed + rank per process, a checkpoint at the end
of every epoch. Additions: bf16 (or the official fp16 + GradScaler), gradient accumulation,
optional cached Q-Former features, exact resume, TensorBoard, samples/s per device and MFU.

Launch on one device with ``python -m training stage2 ...`` and on several with plain DDP:
``accelerate launch --multi_gpu --num_processes N [--num_machines M ...] -m training stage1 ...``
(training/README.md; the launch guards are ``training.launch``).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from training import checkpointing as ckpt
from training.config import TrainConfig
from training.batches import build_batches
from training.data import Batch, require, sample_rng
from training.model import (load_for_training, param_groups, reset_projection, set_trainable, trainable_state,
                            use_training_precision)
from training.objective import Objective, forward_loss, stage2_instructions
from training.schedule import lr_at_step
from training.throughput import flops_per_sample, mfu, peak_flops

log = logging.getLogger(__name__)

# fields that may differ when resuming (everything else comes from the checkpoint's config.json)
RESUME_OVERRIDABLE = ("resume", "max_steps", "output_dir", "progress", "log_every", "num_workers", "tensorboard")


class TrainingModule(nn.Module):
    """MiniGPT4 + objective behind one ``forward`` so DDP sees every trained computation."""

    def __init__(self, model: nn.Module, objective: Objective):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, captions, instruction, pixel_values=None, features=None) -> torch.Tensor:
        if features is not None:  # cached frozen Q-Former outputs: only the projection runs
            proj = self.model.language_projection
            embeds = proj(features.to(proj.weight.dtype)).to(self.model.embedding_dtype)
        else:
            embeds = self.model.encode_image(pixel_values)
        inputs = self.objective.build(self.model, embeds, captions, instruction)
        return forward_loss(self.model, inputs)


@dataclass(frozen=True)
class RunResult:
    steps: int
    last_loss: float | None
    samples_per_s_per_device: float | None
    checkpoint: Path | None
    exported: Path | None
    skipped_samples: int
    weights_sha256: str  # of this rank's trained tensors: equal on every rank after a DDP run


def resolve_resume(cfg: TrainConfig) -> TrainConfig:
    """Reuse the checkpoint's resolved config; only logging/stop fields may change on resume."""
    if not cfg.resume:
        return cfg
    saved = TrainConfig.load(Path(cfg.resume) / "config.json")
    keep = {name: getattr(cfg, name) for name in RESUME_OVERRIDABLE}
    changed = [f.name for f in dataclasses.fields(cfg)
               if f.name not in RESUME_OVERRIDABLE and getattr(cfg, f.name) != getattr(saved, f.name)]
    if changed:
        log.warning("resuming with the checkpoint's values for %s", ", ".join(changed))
    return dataclasses.replace(saved, **keep)


def _llm_dtype(cfg: TrainConfig) -> torch.dtype:
    if "language_model" in cfg.trainable or cfg.mixed_precision == "no":
        return torch.float32  # trained weights keep fp32 masters
    return torch.bfloat16 if cfg.mixed_precision == "bf16" else torch.float16


def build_model(cfg: TrainConfig):
    model, tok = load_for_training(cfg.model_dir, _llm_dtype(cfg), cfg.attn_implementation)
    if cfg.init_from == "random":
        reset_projection(model, cfg.seed)
    elif cfg.init_from:
        _load_into(model, ckpt.load_trainable(cfg.init_from), only_prefix="language_projection.")
    use_training_precision(model, cfg.mixed_precision)
    names = set_trainable(model, cfg.trainable)
    instructions = None
    if cfg.use_prompts:
        prompts = None
        if cfg.prompt_path:
            prompts = [ln.strip() for ln in Path(cfg.prompt_path).read_text(encoding="utf-8").splitlines() if ln.strip()]
        instructions = stage2_instructions(model.config.template, prompts, cfg.prompt_template or None)
    objective = Objective(tok, cfg.resolved_end_sym(model.config.template), cfg.max_txt_len, instructions)
    return model, tok, objective, names


def _load_into(model: nn.Module, tensors: dict[str, torch.Tensor], only_prefix: str = "") -> None:
    tensors = {k: v for k, v in tensors.items() if k.startswith(only_prefix)}
    own = model.state_dict()
    bad = [k for k, v in tensors.items() if k not in own or own[k].shape != v.shape]
    if bad or not tensors:
        raise ValueError(f"checkpoint tensors do not fit this model: {bad[:3] or 'none found'}")
    with torch.no_grad():
        for k, v in tensors.items():
            own[k].copy_(v)


def train(cfg: TrainConfig) -> RunResult:
    cfg = resolve_resume(cfg).validate()
    require("accelerate")
    from accelerate import Accelerator

    from training import launch

    accelerator = Accelerator(cpu=cfg.cpu, mixed_precision=cfg.mixed_precision,
                              gradient_accumulation_steps=cfg.grad_accum, project_dir=cfg.output_dir,
                              log_with="tensorboard" if cfg.tensorboard else None)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    launch.exit_with_launcher()
    launch.check_world(world)
    if cfg.resume:
        launch.check_resume_world(ckpt.load_state(cfg.resume).world_size, world, cfg.batch_size, cfg.grad_accum)
    lock = launch.claim_output_dir(accelerator, cfg.output_dir)
    try:
        return _run(cfg, accelerator)
    finally:  # also when the run fails: the folder is free again for a retry in this process
        if lock is not None:
            lock.release()


def _run(cfg: TrainConfig, accelerator) -> RunResult:
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    torch.manual_seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)

    model, _, objective, names = build_model(cfg)
    start, skipped = 0, 0
    if cfg.resume:
        state = ckpt.load_state(cfg.resume)
        start, skipped = state.step, state.skipped_samples
        _load_into(model, ckpt.load_trainable(cfg.resume))
    module = TrainingModule(model, objective)
    optimizer = torch.optim.AdamW(param_groups(module, cfg.weight_decay), lr=cfg.init_lr,
                                  betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps)
    module, optimizer = accelerator.prepare(module, optimizer)
    if cfg.resume:
        opt_state, scaler_state = ckpt.load_optimizer(cfg.resume)
        optimizer.load_state_dict(opt_state)
        if scaler_state is not None and accelerator.scaler is not None:
            accelerator.scaler.load_state_dict(scaler_state)
        ckpt.load_rng(Path(cfg.resume), rank)

    if main:
        cfg.save(Path(cfg.output_dir) / "config.json")
        log.info("training %s on %d process(es); trainable: %d tensors in %s", cfg.stage, world, len(names),
                 ", ".join(sorted({n.split(".")[0] for n in names})))
    if cfg.tensorboard:
        accelerator.init_trackers("minigpt4", config={k: str(v) for k, v in cfg.to_dict().items()})
    vis = model.config
    data_state = ckpt.load_data_state(cfg.resume, rank) if cfg.resume else None
    batches = build_batches(cfg, vis.vision.image_size, vis.image_mean, vis.image_std, rank, world, start, data_state)
    peak = peak_flops(accelerator.device)
    progress = _progress(cfg, start, main)

    step, last_loss, rate, saved, first_batch_digest = start, None, None, None, None
    window_t, window_samples, window_losses = time.perf_counter(), 0, []
    module.train()
    while step < cfg.total_steps:
        lr = lr_at_step(cfg.schedule, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        for micro in range(cfg.grad_accum):
            batch: Batch = next(batches)
            if first_batch_digest is None:  # lets a DDP test prove the ranks saw different data
                first_batch_digest = weights_digest({"x": _tensors(batch, torch.device("cpu")).popitem()[1]})[:12]
            instruction = objective.choose_instruction(sample_rng(cfg.seed, rank, step, micro))
            with accelerator.accumulate(module):
                loss = module(batch.captions, instruction, **_tensors(batch, accelerator.device))
                accelerator.backward(loss)
                if cfg.max_grad_norm and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(module.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            window_losses.append(loss.detach())
            window_samples += len(batch)
            skipped += batch.skipped
        step += 1
        progress.update(1)

        if step % cfg.log_every == 0 or step == cfg.total_steps:
            local_loss = torch.stack(window_losses).mean()
            log.debug("rank %d local loss %.6f", rank, local_loss.item())
            last_loss = accelerator.reduce(local_loss.clone(), "mean").item()
            elapsed = time.perf_counter() - window_t
            rate = window_samples / elapsed
            total_skipped = int(accelerator.reduce(torch.tensor(skipped, device=accelerator.device), "sum").item())
            positions = _positions(batch, objective, model.config.num_image_tokens, instruction)
            flops = flops_per_sample(model, positions, cached_features=batch.features is not None)
            metrics = {"loss": last_loss, "lr": lr, "samples_per_s_per_device": rate,
                       "skipped_samples": total_skipped}
            util = mfu(rate, flops, peak)
            if util is not None:
                metrics["mfu"] = util
            if cfg.tensorboard:
                accelerator.log(metrics, step=step)
            progress.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}", sps=f"{rate:.1f}")
            log.info("step %d/%d %s", step, cfg.total_steps, " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
            window_t, window_samples, window_losses = time.perf_counter(), 0, []

        at_epoch_end = step % cfg.iters_per_epoch == 0
        if (cfg.save_every and step % cfg.save_every == 0) or at_epoch_end or step == cfg.total_steps:
            stream = batches.state() if hasattr(batches, "state") else None  # stage-1 shard positions
            saved = _save(accelerator, module, optimizer, cfg, step, lr, skipped, last_loss, stream)
    progress.close()

    exported = None
    if main:
        exported = ckpt.export_model_dir(saved or cfg.resume, Path(cfg.output_dir) / "model")
    digest = weights_digest(trainable_state(accelerator.unwrap_model(module).model))
    log.info("rank %d/%d distributed=%s first-batch %s final weights sha256 %s", rank, world,
             accelerator.distributed_type, first_batch_digest, digest)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    _release_accelerator_state()
    return RunResult(step, last_loss, rate, saved, exported, skipped, digest)


def _release_accelerator_state() -> None:
    """Let a later ``train()`` in the same process choose another precision (tests, the demo's two
    stages). The process group (PartialState) is kept."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    import hashlib

    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].float().contiguous().numpy().tobytes())
    return h.hexdigest()


def _tensors(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    if batch.features is not None:
        return {"features": batch.features.to(device, non_blocking=True)}
    return {"pixel_values": batch.pixel_values.to(device, non_blocking=True)}


def _positions(batch: Batch, objective: Objective, image_tokens: int, instruction: str | None) -> int:
    """LLM sequence length of the last batch (for the FLOP estimate)."""
    prompt = sum(len(objective._encode(s)) for s in instruction.split("<ImageHere>")) if instruction else 0
    width = max(len(objective._encode(c + objective.end_sym)) for c in batch.captions)
    return 1 + image_tokens + prompt + min(width, objective.max_txt_len)


def _save(accelerator, module, optimizer, cfg, step, lr, skipped, last_loss, data_state) -> Path:
    path = ckpt.checkpoint_dir(cfg.output_dir, step)
    accelerator.wait_for_everyone()
    trainable = trainable_state(accelerator.unwrap_model(module).model)
    scaler = accelerator.scaler.state_dict() if accelerator.scaler is not None else None
    state = ckpt.TrainerState(step=step, lr=lr, skipped_samples=skipped, world_size=accelerator.num_processes,
                              last_loss=last_loss)
    ckpt.save(path, trainable=trainable, optimizer_state=optimizer.state_dict(), config=cfg,
              state=state, rank=accelerator.process_index, scaler_state=scaler, is_main=accelerator.is_main_process)
    accelerator.wait_for_everyone()
    ckpt.save_rng(path, accelerator.process_index)
    ckpt.save_data_state(path, accelerator.process_index, data_state)
    accelerator.wait_for_everyone()
    return path


def _progress(cfg: TrainConfig, start: int, main: bool):
    from tqdm.auto import tqdm

    return tqdm(total=cfg.total_steps, initial=start, disable=not (main and cfg.progress), desc=cfg.stage,
                unit="step", dynamic_ncols=True)
