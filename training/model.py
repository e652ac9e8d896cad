"""Building the engine's MiniGPT4 for training: load a model directory, choose what trains.

Only ``language_projection`` trains by default (docs/minigpt4-reference.md section 8.1); the other parts are frozen
and pinned to eval mode by ``MiniGPT4.train``. Unfreezing more is a research option.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from engine.minigpt4.converter import LLM_DIR, TOKENIZER_FILE, VISUAL_FILE, read_model_config
from engine.minigpt4.modeling import MiniGPT4
from engine.minigpt4.tokenizer import Tokenizer

log = logging.getLogger(__name__)

# substrings that put a trainable tensor into the no-decay group (official ``get_optimizer_params``)
_NO_DECAY = ("bias", "ln", "bn")


def load_for_training(model_dir: str | Path, llm_dtype: torch.dtype = torch.float32,
                      attn_implementation: str = "sdpa") -> tuple[MiniGPT4, Tokenizer]:
    """Model directory -> (MiniGPT4 on the CPU, Tokenizer). Visual weights stay float32."""
    from transformers import LlamaForCausalLM

    model_dir = Path(model_dir)
    llm = LlamaForCausalLM.from_pretrained(str(model_dir / LLM_DIR), dtype=llm_dtype, local_files_only=True,
                                           attn_implementation=attn_implementation)
    model = _with_visual(MiniGPT4(read_model_config(model_dir), language_model=llm), model_dir)
    return model, Tokenizer(model_dir / TOKENIZER_FILE)


def load_vision_side(model_dir: str | Path, device: torch.device | str = "cpu") -> MiniGPT4:
    """The frozen vision side (ViT, ln_vision, Q-Former, queries) and projection of a model directory,
    without the LLM (only its config is read): enough for ``image_features`` (feature caching)."""
    model_dir = Path(model_dir)
    model = MiniGPT4(read_model_config(model_dir), language_model=nn.Module())  # no LLM weights are built or loaded
    return _with_visual(model, model_dir).to(device).eval()


def _with_visual(model: MiniGPT4, model_dir: Path) -> MiniGPT4:
    """``model`` with the folder's vision side and projection; ValueError when they do not match."""
    missing, unexpected = model.load_state_dict(load_file(str(model_dir / VISUAL_FILE)), strict=False)
    missing = [k for k in missing if not k.startswith("language_model.")]
    if missing or unexpected:
        raise ValueError(f"{model_dir / VISUAL_FILE} does not match the model: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    return model


def set_trainable(model: MiniGPT4, parts: tuple[str, ...]) -> list[str]:
    """Freeze everything, then unfreeze the named top-level parts. Returns trainable tensor names."""
    model.freeze_frozen_parts()
    model.language_projection.requires_grad_(False)
    for part in parts:
        module = getattr(model, part)
        if module is None:
            raise ValueError(f"this model has no {part}")
        module.requires_grad_(True)
    model.train()
    return [n for n, p in model.named_parameters() if p.requires_grad]


class TrainedProjection(nn.Linear):
    """``language_projection`` as it trains: computes in the run's precision, whatever autocast is around it.

    The engine runs the whole image path under fp16 autocast on a GPU (as the official inference);
    the official trainer pairs that with a GradScaler, which a bf16 or fp32 run does not have. So the
    trained layer leaves the surrounding autocast: ``None`` = float32, or autocast to ``dtype``.
    Same parameter names as ``nn.Linear``, so checkpoints and exports are unchanged."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype | None):
        super().__init__(linear.in_features, linear.out_features, bias=linear.bias is not None,
                         device=linear.weight.device, dtype=linear.weight.dtype)
        self.load_state_dict(linear.state_dict())
        self.compute_dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if self.compute_dtype is None:
            with torch.autocast(device, enabled=False):
                return super().forward(x.to(self.weight.dtype))
        with torch.autocast(device, dtype=self.compute_dtype):
            return super().forward(x)


def use_training_precision(model: MiniGPT4, mixed_precision: str) -> None:
    dtype = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mixed_precision]
    model.language_projection = TrainedProjection(model.language_projection, dtype)


def reset_projection(model: MiniGPT4, seed: int) -> None:
    """Fresh ``nn.Linear`` initialisation, as the official stage 1 starts (seeded for determinism)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.language_projection.reset_parameters()


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Official two groups: decay for trainable tensors with >= 2 dims whose names contain none of
    bias/ln/bn; no decay for the rest. For the default run: decay on the projection weight only."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or any(s in name for s in _NO_DECAY):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


__all__ = ["load_for_training", "load_vision_side", "set_trainable", "TrainedProjection", "use_training_precision", "reset_projection", "param_groups", "trainable_state",
           "TOKENIZER_FILE"]
