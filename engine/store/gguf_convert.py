"""The model folder's language model as a GGUF file, for the llama.cpp back-end (engine.minigpt4.llamacpp_backend).

``<model folder>/gguf/llm-<precision>.gguf``: ``f32`` and ``f16`` are written here with the ``gguf``
package, tensor by tensor (a 7B model never sits in memory twice); ``q8_0`` and ``q4_k_m`` are made from
the f16 file by llama.cpp's own quantiser (``llama_model_quantize``). Only the LLaMA decoder goes into
the file: the vision side stays in torch, and the text embeddings the decoder is fed come from the
folder's own ``llm/`` weights, so both back-ends see the same context embeddings.

Conversion is an explicit step (``lumen models gguf MODEL PRECISION``), never done at start-up.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

import numpy as np

from engine.store.model_folder import LLM_DIR, read_llm_json

log = logging.getLogger(__name__)

GGUF_DIR = "gguf"
PRECISIONS = ("f32", "f16", "q8_0", "q4_k_m")  # what `lumen models gguf` offers
WRITTEN = {"f32": np.float32, "f16": np.float16}  # written by us; the others by llama.cpp's quantiser
# llama.cpp's LLAMA_FTYPE_* numbers (include/llama.h)
FTYPE = {"f32": 0, "f16": 1, "q8_0": 7, "q4_k_m": 15}
# Bytes per weight of each file (k-quants: the block scales included), for the memory estimate.
BYTES_PER_WEIGHT = {"f32": 4.0, "f16": 2.0, "q8_0": 34 / 32, "q4_k_m": 4.85 / 8}


class GgufError(RuntimeError):
    pass


def gguf_path(model_dir: Path, precision: str) -> Path:
    return Path(model_dir) / GGUF_DIR / f"llm-{precision}.gguf"


def available(model_dir: Path) -> list[str]:
    """The precisions converted in this folder, smallest first (the order the back-end prefers)."""
    return [p for p in reversed(PRECISIONS) if gguf_path(model_dir, p).is_file()]


def _llm_files(llm_dir: Path) -> list[Path]:
    files = sorted(llm_dir.glob("*.safetensors"))
    if not files:
        raise GgufError(f"{llm_dir}: no safetensors weights to convert")
    return files


def _tensors(llm_dir: Path):
    """(name, safe_open handle) of every LLM tensor, lazily (nothing is read yet)."""
    from safetensors import safe_open

    for file in _llm_files(llm_dir):
        handle = safe_open(str(file), framework="np")
        for name in handle.keys():
            yield name, handle


def _permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Hugging Face's rotate-half q/k rows -> llama.cpp's interleaved RoPE order (convert_hf_to_gguf.py)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _gguf_name(hf: str) -> str | None:
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    parts = hf.split(".")
    if parts[:2] != ["model", "layers"] or parts[-1] != "weight":
        return None  # rotary_emb.inv_freq and the like: llama.cpp computes them itself
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    name = names.get(".".join(parts[3:-1]))
    return f"blk.{parts[2]}.{name}.weight" if name else None


def _add_vocab(writer, tokenizer_file: Path, vocab_size: int) -> None:
    import gguf
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_file))
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        kind = gguf.TokenType.NORMAL
        if sp.is_unknown(i):
            kind = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            kind = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            kind = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            kind = gguf.TokenType.BYTE
        types.append(kind)
    for i in range(len(tokens), vocab_size):  # rows past the tokenizer (e.g. an added pad row)
        tokens.append(f"<unused{i}>".encode())
        scores.append(0.0)
        types.append(gguf.TokenType.UNUSED)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_unk_token_id(sp.unk_id())
    writer.add_add_bos_token(False)  # we feed embeddings; llama.cpp never tokenises for us


def write_gguf(model_dir: Path, out: Path, precision: str) -> Path:
    """Write the LLM of ``model_dir`` as an f32 or f16 GGUF file at ``out`` (streamed, tensor by tensor)."""
    import gguf

    dtype = WRITTEN[precision]
    llm_dir = Path(model_dir) / LLM_DIR
    cfg = read_llm_json(llm_dir)
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(Path(model_dir).name)
    writer.add_context_length(cfg.get("max_position_embeddings", 2048))
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(cfg.get("head_dim") or cfg["hidden_size"] // n_head)
    rope = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    writer.add_rope_freq_base(float(rope))
    writer.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    writer.add_vocab_size(cfg["vocab_size"])
    writer.add_file_type(FTYPE[precision])
    _add_vocab(writer, Path(model_dir) / "tokenizer.model", cfg["vocab_size"])

    plan = []
    for hf, handle in _tensors(llm_dir):
        name = _gguf_name(hf)
        if name is None:
            continue
        shape = tuple(handle.get_slice(hf).get_shape())
        # 1-D tensors (norms) stay f32 as in llama.cpp's own converter
        kept = np.float32 if len(shape) == 1 else dtype
        plan.append((hf, handle, name, shape, kept))
    if not any(p[2] == "output.weight" for p in plan) and not cfg.get("tie_word_embeddings", False):
        raise GgufError(f"{llm_dir}: no lm_head weights")
    for _, _, name, shape, kept in plan:
        writer.add_tensor_info(name, shape, np.dtype(kept), int(np.prod(shape)) * np.dtype(kept).itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for hf, handle, name, _, kept in plan:
        w = handle.get_tensor(hf).astype(np.float32)
        if name.endswith(("attn_q.weight", "attn_k.weight")):
            w = _permute_qk(w, n_head if name.endswith("attn_q.weight") else n_kv)
        writer.write_tensor_data(np.ascontiguousarray(w.astype(kept)))
    writer.close()
    return out


_quiet_log = None


def silence_llama_log(llama_cpp) -> None:
    """llama.cpp logs every tensor at load time on stderr; the engine reports its own progress."""
    global _quiet_log
    if _quiet_log is None:
        _quiet_log = llama_cpp.llama_log_callback(lambda level, text, user: None)
        llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))


def quantize(src: Path, out: Path, precision: str, threads: int | None = None) -> Path:
    """llama.cpp's own quantiser (the one behind llama-quantize), as llama-cpp-python exposes it."""
    import llama_cpp

    silence_llama_log(llama_cpp)  # a line per tensor otherwise
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPE[precision]
    params.nthread = threads or os.cpu_count() or 1
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), params)
    if rc != 0:
        raise GgufError(f"llama.cpp could not quantise {src} to {precision} (code {rc})")
    return out


def convert(model_dir: Path, precision: str) -> Path:
    """Store ``gguf/llm-<precision>.gguf`` in the model folder (written to a temporary name, then renamed)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown GGUF precision {precision!r} (one of {', '.join(PRECISIONS)})")
    model_dir = Path(model_dir)
    out = gguf_path(model_dir, precision)
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".converting")
    try:
        if precision in WRITTEN:
            write_gguf(model_dir, tmp, precision)
        else:
            f16 = gguf_path(model_dir, "f16")
            made_f16 = not f16.is_file()
            if made_f16:
                convert(model_dir, "f16")
            try:
                quantize(f16, tmp, precision)
            finally:
                if made_f16:  # only the file the user asked for stays
                    f16.unlink(missing_ok=True)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("converted %s -> %s", model_dir, out)
    return out


def estimate_bytes(n_params: float, precision: str) -> int:
    return int(n_params * BYTES_PER_WEIGHT[precision])
