"""Throughput and MFU bookkeeping for the training log and benchmarks/training_throughput.py.

FLOPs per sample are the usual 2 x parameters x tokens estimate (attention-score FLOPs ignored; they
are small at MiniGPT-4's 40-200 LLM positions): ViT over 1+P tokens and Q-Former over its queries
(forward only: frozen), the LLM forward, plus the backward through the LLM needed to reach the
projection (activation gradients ~ 1x forward; weight gradients add another 1x for every trainable
LLM weight). With cached features the ViT/Q-Former term disappears.
"""

from __future__ import annotations

import torch

# dense bf16/fp16 tensor-core peaks (FLOP/s) by device-name substring; first match wins
PEAK_FLOPS = (
    ("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12),
    ("A10G", 125e12), ("RTX 4090", 165e12), ("RTX 3090", 71e12), ("V100", 125e12),
)


def _params(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def flops_per_sample(model, llm_positions: int, cached_features: bool = False) -> float:
    vis = model.config.vision
    image = 0.0
    if not cached_features:
        image = 2.0 * _params(model.vision_model) * (vis.num_patches + 1)
        if model.qformer is not None:
            image += 2.0 * _params(model.qformer) * model.config.qformer.num_query_tokens
    llm_params = _params(model.language_model)
    trainable_llm = sum(p.numel() for p in model.language_model.parameters() if p.requires_grad)
    llm = 2.0 * llm_params * llm_positions * 2 + 2.0 * trainable_llm * llm_positions
    return image + llm


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS if key in name), None)


def mfu(samples_per_s: float, flops: float, peak: float | None) -> float | None:
    return None if not peak else samples_per_s * flops / peak
