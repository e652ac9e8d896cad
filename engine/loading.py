"""Load a Lumen model directory: validated local paths, device/precision choice, memory check.

Device and dtype decisions are made here and only here, and the reason is recorded in the summary.
Nothing touches the network (``local_files_only``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.checkpoints import LLM_DIR, TOKENIZER_FILE, VISUAL_FILE, CheckpointError, read_model_json
from engine.config import MiniGPT4Config
from engine.modeling_minigpt4 import MiniGPT4
from engine.protocol import ErrorKind, Quantization
from engine.tokenizer import Tokenizer

log = logging.getLogger(__name__)

BYTES_PER_PARAM = {Quantization.NONE: None, Quantization.INT8: 1.06, Quantization.NF4: 0.56}
RUNTIME_MARGIN = 1.15  # activations, KV cache for a 2k context, allocator slack


class ModelLoadError(RuntimeError):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class LoadedModel:
    model: MiniGPT4
    tokenizer: Tokenizer
    config: MiniGPT4Config
    device: torch.device
    dtype: torch.dtype
    quantization: Quantization
    summary: str
    warnings: tuple[str, ...] = field(default_factory=tuple)


def resolve_device(device: str) -> torch.device:
    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(ErrorKind.UNSUPPORTED_HARDWARE, "CUDA was requested but no CUDA GPU is available")
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype != "auto":
        try:
            return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
        except KeyError:
            raise ModelLoadError(ErrorKind.BAD_REQUEST, f"unknown dtype {dtype!r}") from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def llm_parameter_count(llm: dict) -> int:
    h, i, n, v = llm["hidden_size"], llm["intermediate_size"], llm["num_hidden_layers"], llm["vocab_size"]
    kv = llm.get("num_key_value_heads", llm["num_attention_heads"]) / llm["num_attention_heads"]
    per_layer = h * h * (2 + 2 * kv) + 3 * h * i + 2 * h
    return int(n * per_layer + 2 * v * h + h)


def required_bytes(config: MiniGPT4Config, dtype: torch.dtype, quantization: Quantization) -> int:
    """Rough memory needed on the device: LLM at its precision + vision side (fp16 ViT, fp32 rest)."""
    llm_params = llm_parameter_count(config.llm)
    elem = torch.finfo(dtype).bits // 8
    per_param = BYTES_PER_PARAM[quantization] or elem
    embed = 2 * config.llm["vocab_size"] * config.llm["hidden_size"]  # embeddings and head stay unquantised
    llm_bytes = (llm_params - embed) * per_param + embed * elem
    v = config.vision
    vit_params = v.num_layers * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
    vision_bytes = vit_params * (2 if elem < 4 else 4) + 0.12e9 * 4 * (config.qformer is not None)
    return int((llm_bytes + vision_bytes) * RUNTIME_MARGIN)


def available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def recommend(config: MiniGPT4Config, dtype: torch.dtype, available: int) -> Quantization | None:
    for q in (Quantization.NONE, Quantization.NF4):  # LLM.int8 is never recommended: slow (performance.md 2.2)
        if required_bytes(config, dtype, q) <= available:
            return q
    return None


def check_memory(config: MiniGPT4Config, device: torch.device, dtype: torch.dtype, quantization: Quantization) -> None:
    available = available_bytes(device)
    if available is None:
        return
    need = required_bytes(config, dtype, quantization)
    if need <= available:
        return
    better = recommend(config, dtype, available)
    advice = (f"choose {better.value} precision, which needs about {required_bytes(config, dtype, better) / 1e9:.1f} GB"
              if better else "no precision fits; use a smaller model or free memory")
    raise ModelLoadError(ErrorKind.OUT_OF_MEMORY,
                         f"{config.name} at {quantization.value} needs about {need / 1e9:.1f} GB on {device}, "
                         f"{available / 1e9:.1f} GB free: {advice}")


def _bnb_config(quantization: Quantization, dtype: torch.dtype, device: torch.device):
    if quantization is Quantization.NONE:
        return None
    if device.type == "mps":
        raise ModelLoadError(ErrorKind.UNSUPPORTED_HARDWARE, "8-bit and 4-bit need bitsandbytes, which does not run on Apple GPUs")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise ModelLoadError(ErrorKind.UNSUPPORTED_HARDWARE,
                             f"8-bit/4-bit need bitsandbytes (pip install 'lumen-assistant[gpu]'): {exc}") from exc
    if quantization is Quantization.INT8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype)


def _place_vision(model: MiniGPT4, device: torch.device, dtype: torch.dtype) -> None:
    """Official precision (reference section 9): on a GPU the ViT's Linear/Conv weights are fp16 and its
    LayerNorms, class and position embeddings fp32; ln_vision, Q-Former, queries and projection fp32.
    On the CPU everything is fp32."""
    parts = [model.vision_model, model.language_projection]
    if model.qformer is not None:
        parts.append(model.qformer)
    for part in parts:
        part.to(device=device, dtype=torch.float32)
    if model.query_tokens is not None:
        model.query_tokens.data = model.query_tokens.data.to(device, torch.float32)
    if device.type != "cpu" and dtype != torch.float32:
        for module in model.vision_model.encoder.modules():
            if isinstance(module, torch.nn.Linear):
                module.to(torch.float16)
        model.vision_model.embeddings.patch_embedding.to(torch.float16)


def load_model(model_dir: str | Path, device: str = "auto", dtype: str = "auto",
               quantization: Quantization = Quantization.NONE, check_memory_first: bool = True) -> LoadedModel:
    from safetensors.torch import load_file
    from transformers import LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no progress bars on the engine's stderr; we report Progress events

    model_dir = Path(model_dir).expanduser()
    if not model_dir.is_dir():
        raise ModelLoadError(ErrorKind.MODEL_MISSING, f"model folder not found: {model_dir}")
    for name in (VISUAL_FILE, LLM_DIR, TOKENIZER_FILE):
        if not (model_dir / name).exists():
            raise ModelLoadError(ErrorKind.MODEL_MISSING, f"{model_dir / name} is missing; set the model up again")
    try:
        config = read_model_json(model_dir)
        llm_cfg = _llm_config(model_dir / LLM_DIR)
    except CheckpointError as exc:
        raise ModelLoadError(ErrorKind.MODEL_MISMATCH, str(exc)) from exc
    from dataclasses import replace

    config = replace(config, llm=llm_cfg)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    quantization = Quantization(quantization)
    if check_memory_first:
        check_memory(config, dev, torch_dtype, quantization)
    warnings: list[str] = []
    if dev.type == "cpu":
        warnings.append("cpu_slow")
        log.info("No GPU: running on the CPU, answers will be slow")

    bnb = _bnb_config(quantization, torch_dtype, dev)
    kwargs = {"dtype": torch_dtype, "local_files_only": True}
    if bnb is not None:
        kwargs.update(quantization_config=bnb, device_map={"": str(dev) if dev.type != "cuda" else dev.index or 0})
    try:
        llm = LlamaForCausalLM.from_pretrained(str(model_dir / LLM_DIR), **kwargs)
    except torch.cuda.OutOfMemoryError as exc:
        raise ModelLoadError(ErrorKind.OUT_OF_MEMORY, f"out of GPU memory while loading the language model: {exc}") from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(ErrorKind.MODEL_MISMATCH, f"{model_dir / LLM_DIR}: cannot load the language model: {exc}") from exc
    if bnb is None:
        llm.to(dev)
    llm.eval()

    with torch.device("meta"):
        model = MiniGPT4(config, language_model=llm)
    try:
        state = load_file(str(model_dir / VISUAL_FILE))
    except Exception as exc:
        raise ModelLoadError(ErrorKind.MODEL_MISMATCH, f"{model_dir / VISUAL_FILE}: unreadable ({exc})") from exc
    _check_visual(model, state, model_dir / VISUAL_FILE)
    model.load_state_dict(state, strict=False, assign=True)
    _place_vision(model, dev, torch_dtype)
    model.freeze_frozen_parts()
    model.eval()

    tokenizer = Tokenizer(model_dir / TOKENIZER_FILE)
    if tokenizer.vocab_size != config.llm["vocab_size"]:
        raise ModelLoadError(ErrorKind.MODEL_MISMATCH,
                             f"tokenizer has {tokenizer.vocab_size} pieces but the model expects {config.llm['vocab_size']}")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    summary = f"{config.name}, {name}, {str(torch_dtype).removeprefix('torch.')}, {quantization.value}"
    return LoadedModel(model, tokenizer, config, dev, torch_dtype, quantization, summary, tuple(warnings))


def _llm_config(llm_dir: Path) -> dict:
    from engine.checkpoints import _read_llm_config

    return _read_llm_config(llm_dir)


def _check_visual(model: MiniGPT4, state: dict, file: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("language_model.")}
    missing = sorted(set(expected) - set(state))
    wrong = [k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k]]
    if missing or wrong:
        raise ModelLoadError(ErrorKind.MODEL_MISMATCH,
                             f"{file}: {len(missing)} tensors missing {missing[:3]}, {len(wrong)} mis-shaped {wrong[:3]}")
