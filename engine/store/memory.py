"""The one memory estimate: how much memory MiniGPT-4 needs to answer, derived from its
configuration (``engine.minigpt4.config``: the presets, or a model folder's own config). Torch-free:
the setup wizard's table and ``lumen models list`` (through ``engine.store.catalogue``), the check
before loading (``engine.minigpt4.loading.required_bytes``) and the GGUF sizes all use it.
Cross-checked with the published figures in docs/performance.md section 1.
"""

from __future__ import annotations

from typing import Any

from engine.minigpt4.config import MiniGPT4Config
from engine.protocol import Quantization

GB = 1_000_000_000
RUNTIME_OVERHEAD_BYTES = int(0.8 * GB)  # CUDA context, activations, allocator slack
CPU_OVERHEAD_BYTES = int(0.5 * GB)  # no CUDA context on the CPU; Python, torch, activations
ESTIMATE_CONTEXT = 2048  # positions kept by the official window rule (max_length 2000 + margin)
BYTES_PER_LINEAR_PARAM = {Quantization.INT8: 1.0, Quantization.NF4: 0.53}  # nf4: + its scales


def llm_params(llm: dict[str, Any]) -> tuple[float, float]:
    """(parameters in the decoder's linear layers, parameters in the embedding table + LM head) of a
    Hugging Face LLaMA ``config.json``."""
    h, i, n, v = llm["hidden_size"], llm["intermediate_size"], llm["num_hidden_layers"], llm["vocab_size"]
    kv = llm.get("num_key_value_heads", llm["num_attention_heads"]) / llm["num_attention_heads"]
    return float(n * (h * h * (2 + 2 * kv) + 3 * h * i)), float(2 * v * h)


def vision_params(config: MiniGPT4Config) -> float:
    """Parameters of the ViT, the Q-Former (if any) and the projection."""
    v = config.vision
    vit = v.num_layers * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
    vit += (v.num_patches + 1 + 3 * v.patch_size**2) * v.hidden_size
    q = config.qformer
    qformer = 0 if q is None else q.num_layers * (4 * q.hidden_size**2 + 2 * q.hidden_size * q.intermediate_size) \
        + (q.num_layers // q.cross_attention_freq) * (2 * q.hidden_size * v.hidden_size + 2 * q.hidden_size**2)
    return float(vit + qformer + config.projection_in_features * config.llm_hidden_size)


def weight_params(config: MiniGPT4Config) -> float:
    """Every parameter of the model."""
    linear, embed = llm_params(config.llm)
    return linear + embed + vision_params(config)


def memory_bytes(config: MiniGPT4Config, quantization: Quantization = Quantization.NONE, *, element_bytes: int = 2,
                 on_cpu: bool = False) -> int:
    """Estimated peak memory while answering with a full context window [E]: weights (the decoder's
    linear layers at the quantization, embeddings, LM head and the vision side at ``element_bytes``)
    + KV cache (2 x layers x KV width x ``element_bytes`` per position) + runtime overhead."""
    llm = config.llm
    linear, embed = llm_params(llm)
    kv_width = llm["hidden_size"] * llm.get("num_key_value_heads", llm["num_attention_heads"]) // llm["num_attention_heads"]
    context = min(int(llm.get("max_position_embeddings", 2048)), ESTIMATE_CONTEXT)
    linear_bytes = BYTES_PER_LINEAR_PARAM.get(quantization, element_bytes)
    weights = linear * linear_bytes + (embed + vision_params(config)) * element_bytes
    kv_cache = 2 * llm["num_hidden_layers"] * kv_width * element_bytes * context
    return int(weights + kv_cache + (CPU_OVERHEAD_BYTES if on_cpu else RUNTIME_OVERHEAD_BYTES))
