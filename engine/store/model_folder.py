"""A Lumen model folder's layout, and the torch-free reading of its small files: the one place that
says which files a model folder holds and how its language model's ``llm/config.json`` is read.
The torch side (``engine.minigpt4.converter``: writing a folder, ``read_model_config``) builds on it;
``lumen --check``, ``lumen models gguf`` and the GGUF conversion read the configuration through it.

Layout::

    lumen_model.json      MiniGPT4Config (vision / qformer / template) + provenance
    visual.safetensors    vision_model.*, qformer.*, query_tokens, language_projection.*
    llm/                  a Hugging Face LlamaForCausalLM directory (config.json, safetensors shards)
    tokenizer.model       the LLaMA SentencePiece model

A missing or unreadable file is a ``CheckpointError`` naming the file and the problem in words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_JSON = "lumen_model.json"
VISUAL_FILE = "visual.safetensors"
LLM_DIR = "llm"
TOKENIZER_FILE = "tokenizer.model"
MODEL_FILES = (VISUAL_FILE, LLM_DIR, TOKENIZER_FILE)  # beside MODEL_JSON
MAX_JSON_BYTES = 4 * 1024 * 1024
# What a MiniGPT4Config keeps of the language model's config.json (read_llm_config).
LLM_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "rms_norm_eps", "max_position_embeddings", "rope_theta",
            "tie_word_embeddings", "hidden_act")
_SIZES = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
          "num_key_value_heads")


class CheckpointError(RuntimeError):
    """A model file (an official checkpoint, a model folder's file) is missing or wrong: ``file`` and
    ``problem`` say which and why, in words."""

    def __init__(self, file: Path | str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = str(file)
        self.problem = problem


def read_json(path: Path) -> dict:
    """A small JSON object from a regular file, or a ``CheckpointError`` naming the file and the problem."""
    path = Path(path)
    try:
        if not path.is_file():  # also refuses a FIFO or a device, which would hang or never end
            raise CheckpointError(path, "is not a regular file")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError(path, f"is too large for a description ({path.stat().st_size / 1e6:.0f} MB)")
        data = json.loads(path.read_text(encoding="utf-8"))
    except CheckpointError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(path, f"not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(path, f"must hold a JSON object, not a {type(data).__name__}")
    return data


def read_llm_json(llm_dir: Path) -> dict[str, Any]:
    """The whole ``config.json`` of a Hugging Face LLaMA folder (a model folder's ``llm/``), checked:
    a LLaMA model whose sizes are positive whole numbers (``num_key_value_heads`` defaults to the
    number of attention heads). Everything else in it is kept, for the GGUF conversion."""
    cfg_file = Path(llm_dir) / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(llm_dir, "not a Hugging Face model folder (config.json missing)")
    data = read_json(cfg_file)
    if data.get("model_type") != "llama":
        raise CheckpointError(cfg_file, f"expected a LLaMA model, found model_type={data.get('model_type')!r}")
    if "num_attention_heads" in data:
        data.setdefault("num_key_value_heads", data["num_attention_heads"])
    for key in _SIZES:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise CheckpointError(cfg_file, f"{key} must be a positive whole number, found {value!r}")
    if data["hidden_size"] % data["num_attention_heads"]:
        raise CheckpointError(cfg_file, "hidden_size is not a multiple of num_attention_heads")
    return data


def read_llm_config(llm_dir: Path) -> dict[str, Any]:
    """What a MiniGPT4Config keeps of ``read_llm_json`` (``LLM_KEYS``)."""
    data = read_llm_json(llm_dir)
    return {k: data[k] for k in LLM_KEYS if k in data}
