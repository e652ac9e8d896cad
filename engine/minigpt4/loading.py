"""Load a Lumen model directory: validated local paths, device/precision choice, memory check.

Device and dtype decisions are made here and only here, and the reason is recorded in the summary.
Nothing touches the network (``local_files_only``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.minigpt4.converter import LLM_DIR, TOKENIZER_FILE, VISUAL_FILE, CheckpointError, read_model_config
from engine.minigpt4.config import MiniGPT4Config
from engine.minigpt4.modeling import MiniGPT4
from engine.protocol import Backend, ErrorKind, Quantization, memory_error_kind
from engine.store.hardware import fitting_quantizations
from engine.store.memory import memory_bytes
from engine.minigpt4.tokenizer import Tokenizer

log = logging.getLogger(__name__)



class ModelLoadError(RuntimeError):
    """``path``: the file (or folder) at fault, when one is; the desktop names it to the user."""

    def __init__(self, kind: ErrorKind, message: str, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = str(path) if path is not None else None


def _mismatch(path: Path, problem: str) -> ModelLoadError:
    return ModelLoadError(ErrorKind.MODEL_MISMATCH, f"{path}: {problem}", path)


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


def resolve_dtype(dtype: str, device: torch.device, config: MiniGPT4Config | None = None) -> torch.dtype:
    if dtype != "auto":
        try:
            return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
        except KeyError:
            raise ModelLoadError(ErrorKind.BAD_REQUEST, f"unknown dtype {dtype!r}") from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    # CPU: float32 (exact, and what the official code computes there) when it fits, else bfloat16;
    # when the free memory is unknown, bfloat16: half the memory, rather than a machine that swaps
    available = available_bytes(device)
    if config is not None and (available is None or
                               required_bytes(config, torch.float32, Quantization.NONE, device) > available):
        return torch.bfloat16
    return torch.float32


def required_bytes(config: MiniGPT4Config, dtype: torch.dtype, quantization: Quantization,
                   device: torch.device | None = None) -> int:
    """Memory needed to answer (``engine.store.memory``, the estimate the setup wizard shows)."""
    return memory_bytes(config, quantization, element_bytes=torch.finfo(dtype).bits // 8,
                        on_cpu=device is not None and device.type == "cpu")


def available_bytes(device: torch.device) -> int | None:
    """Free memory for ``device``: the GPU's own, else the system's (MPS shares it); None if unknown."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception as exc:  # noqa: BLE001 - psutil missing or the OS refused: unknown
        log.warning("free memory unknown: %r", exc)
        return None


def recommend(config: MiniGPT4Config, dtype: torch.dtype, available: int, device: torch.device) -> Quantization | None:
    """The precision to advise when a load does not fit: the setup wizard's rule (engine.store.hardware)."""
    fitting = fitting_quantizations(config, available, device.type, torch.finfo(dtype).bits // 8)
    return fitting[0] if fitting else None


def check_memory(config: MiniGPT4Config, device: torch.device, dtype: torch.dtype, quantization: Quantization) -> None:
    available = available_bytes(device)
    if available is None:
        return
    need = required_bytes(config, dtype, quantization, device)
    if need <= available:
        return
    better = recommend(config, dtype, available, device)
    advice = (f"choose {better.value} precision, which needs about "
              f"{required_bytes(config, dtype, better, device) / 1e9:.1f} GB"
              if better else "no precision fits; use a smaller model or free memory")
    raise ModelLoadError(ErrorKind.OUT_OF_MEMORY,
                         f"{config.name} at {quantization.value} needs about {need / 1e9:.1f} GB on {device}, "
                         f"{available / 1e9:.1f} GB free: {advice}")


def bnb_config(quantization: Quantization, dtype: torch.dtype):
    """NF4 with double quantisation (compute in ``dtype``), or LLM.int8: the LLM only."""
    from transformers import BitsAndBytesConfig

    if quantization is Quantization.INT8:
        return BitsAndBytesConfig(load_in_8bit=True)
    if quantization is Quantization.NF4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=dtype)
    raise ValueError(f"not a bitsandbytes quantization: {quantization!r}")


def _check_bitsandbytes(device: torch.device) -> None:
    if device.type == "mps":
        raise ModelLoadError(ErrorKind.UNSUPPORTED_HARDWARE, "8-bit and 4-bit need bitsandbytes, which does not run on Apple GPUs")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(ErrorKind.UNSUPPORTED_HARDWARE,
                             f"8-bit/4-bit need bitsandbytes (pip install 'lumen-assistant[gpu]'): {exc}") from exc


def saved_quantization(llm_dir: Path) -> Quantization | None:
    """The quantisation of a pre-quantised copy (``lumen models quantize``), from llm/config.json."""
    import json

    try:
        saved = json.loads((llm_dir / "config.json").read_text()).get("quantization_config")
    except (OSError, ValueError):
        return None
    if not saved:
        return None
    return Quantization.INT8 if saved.get("load_in_8bit") else Quantization.NF4


def _place_vision(model: MiniGPT4, device: torch.device, dtype: torch.dtype) -> None:
    """Official precision (docs/minigpt4-reference.md section 9): on a GPU the ViT's Linear/Conv weights are fp16 and its
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
               quantization: Quantization = Quantization.NONE, check_memory_first: bool = True,
               backend: Backend = Backend.TORCH, gguf_precision: str | None = None) -> LoadedModel:
    """``Backend.LLAMACPP``: the LLaMA decoder from the folder's GGUF file (engine.minigpt4.llamacpp_backend),
    the vision side in fp32 torch as on the CPU today."""
    from transformers import LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no progress bars on the engine's stderr; we report Progress events

    model_dir = Path(model_dir).expanduser()
    if not model_dir.is_dir():
        raise ModelLoadError(ErrorKind.MODEL_MISSING, f"model folder not found: {model_dir}", model_dir)
    check_files(model_dir)
    try:
        config = read_model_config(model_dir)
    except CheckpointError as exc:
        raise ModelLoadError(ErrorKind.MODEL_MISMATCH, str(exc), exc.file) from exc
    tokenizer = _load_tokenizer(model_dir / TOKENIZER_FILE, config)
    if backend == Backend.LLAMACPP:
        return _load_llamacpp(model_dir, config, tokenizer, gguf_precision)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev, config)
    quantization = Quantization(quantization)
    saved = saved_quantization(model_dir / LLM_DIR)
    if saved is not None:  # a pre-quantised copy: transformers reads it back as it is
        quantization = saved
    warnings: list[str] = []
    if check_memory_first:
        check_memory(config, dev, torch_dtype, quantization)
    if available_bytes(dev) is None:
        warnings.append("memory_unknown")
        log.warning("free memory unknown: not checked before loading; %s chosen", torch_dtype)
    if dev.type == "cpu":
        warnings.append("cpu_slow")
        log.info("No GPU: running on the CPU, answers will be slow")

    kwargs: dict = {"dtype": torch_dtype, "local_files_only": True}
    if quantization is not Quantization.NONE:
        _check_bitsandbytes(dev)
        kwargs["device_map"] = {"": dev.index or 0} if dev.type == "cuda" else {"": str(dev)}
        if saved is None:
            kwargs["quantization_config"] = bnb_config(quantization, torch_dtype)
    weights = _llm_weights(model_dir / LLM_DIR)
    try:
        llm, info = LlamaForCausalLM.from_pretrained(str(model_dir / LLM_DIR), output_loading_info=True, **kwargs)
    except MemoryError as exc:
        raise ModelLoadError(ErrorKind.OUT_OF_MEMORY, f"out of memory while loading the language model: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - truncated files, refused pickles, bad headers: all "damaged"
        if memory_error_kind(exc):  # CUDA's OutOfMemoryError, MPS's RuntimeError "MPS backend out of memory"
            raise ModelLoadError(memory_error_kind(exc),
                                 f"out of {dev.type.upper()} memory while loading the language model: {exc}") from exc
        raise _mismatch(weights, f"cannot load the language model ({type(exc).__name__}: {str(exc)[:300]})") from exc
    missing = info.get("missing_keys") or []
    wrong = info.get("mismatched_keys") or []
    if missing or wrong:  # transformers would leave these layers random: refuse, as for visual.safetensors
        raise _mismatch(weights, f"{len(missing)} tensors missing {sorted(missing)[:3]}, "
                                 f"{len(wrong)} mis-shaped {[k for k, *_ in wrong][:3]}")
    if quantization is Quantization.NONE:
        try:
            llm.to(dev)
        except RuntimeError as exc:
            if not memory_error_kind(exc):
                raise
            raise ModelLoadError(memory_error_kind(exc),
                                 f"out of {dev.type.upper()} memory while moving the language model: {exc}") from exc
    llm.eval()

    model = _with_visual(model_dir, config, llm, dev, torch_dtype)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    summary = f"{config.name}, {name}, {str(torch_dtype).removeprefix('torch.')}, {quantization.value}"
    return LoadedModel(model, tokenizer, config, dev, torch_dtype, quantization, summary, tuple(warnings))


def _load_llamacpp(model_dir: Path, config: MiniGPT4Config, tokenizer: Tokenizer, precision: str | None) -> LoadedModel:
    from engine.minigpt4.llamacpp_backend import LlamaCppError, load_decoder

    try:
        decoder = load_decoder(model_dir, config.llm, precision)
    except LlamaCppError as exc:
        raise ModelLoadError(exc.kind, str(exc), exc.path) from exc
    dev = torch.device("cpu")
    model = _with_visual(model_dir, config, decoder, dev, torch.float32)
    where = "GPU" if decoder.lib.llama_supports_gpu_offload() else f"CPU, up to {decoder.threads} threads"
    summary = f"{config.name}, llama.cpp {decoder.gguf_file.stem.removeprefix('llm-')} ({where})"
    return LoadedModel(model, tokenizer, config, dev, torch.float32, Quantization.NONE, summary)


def _with_visual(model_dir: Path, config: MiniGPT4Config, llm: torch.nn.Module, dev: torch.device,
                 torch_dtype: torch.dtype) -> MiniGPT4:
    from safetensors.torch import load_file

    with torch.device("meta"):
        model = MiniGPT4(config, language_model=llm)
    try:
        state = load_file(str(model_dir / VISUAL_FILE))
    except Exception as exc:  # noqa: BLE001 - any failure to read the file means it is damaged
        raise _mismatch(model_dir / VISUAL_FILE, f"unreadable ({type(exc).__name__}: {str(exc)[:300]})") from exc
    _check_visual(model, state, model_dir / VISUAL_FILE)
    model.load_state_dict(state, strict=False, assign=True)
    _place_vision(model, dev, torch_dtype)
    model.freeze_frozen_parts()
    model.eval()
    return model


def check_files(model_dir: Path) -> None:
    """Every file the loader will read is a regular file (a FIFO would hang it, a device never end),
    before anything is read."""
    for name in (VISUAL_FILE, LLM_DIR, TOKENIZER_FILE):
        if not (model_dir / name).exists():
            raise ModelLoadError(ErrorKind.MODEL_MISSING, f"{model_dir / name} is missing; set the model up again",
                                 model_dir / name)
    llm_dir = model_dir / LLM_DIR
    if not llm_dir.is_dir():
        raise _mismatch(llm_dir, "is not a folder")
    for path in [model_dir / VISUAL_FILE, model_dir / TOKENIZER_FILE, *sorted(llm_dir.iterdir())]:
        if path.parent == llm_dir and path.is_dir():
            continue
        if not path.is_file():
            raise _mismatch(path, "is a folder, not a file" if path.is_dir() else "is not a regular file")


def _llm_weights(llm_dir: Path) -> Path:
    """The language model's weights file (the first shard or the index), to name it in errors."""
    for pattern in ("*.safetensors.index.json", "*.safetensors", "*.bin.index.json", "*.bin"):
        found = sorted(llm_dir.glob(pattern))
        if found:
            return found[0]
    raise ModelLoadError(ErrorKind.MODEL_MISSING, f"{llm_dir}: no language model weights", llm_dir)


def _load_tokenizer(path: Path, config: MiniGPT4Config) -> Tokenizer:
    try:
        tokenizer = Tokenizer(path)
    except Exception as exc:  # noqa: BLE001 - sentencepiece raises RuntimeError/OSError on damaged files
        raise _mismatch(path, f"not a SentencePiece tokenizer ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if tokenizer.vocab_size != config.llm["vocab_size"]:
        raise _mismatch(path, f"has {tokenizer.vocab_size} pieces but the model expects {config.llm['vocab_size']}")
    return tokenizer


def _check_visual(model: MiniGPT4, state: dict, file: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("language_model.")}
    missing = sorted(set(expected) - set(state))
    wrong = [k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k]]
    if missing or wrong:
        raise _mismatch(file, f"{len(missing)} tensors missing {missing[:3]}, {len(wrong)} mis-shaped {wrong[:3]}")
