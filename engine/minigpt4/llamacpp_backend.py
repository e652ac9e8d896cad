"""The LLaMA decoder in llama.cpp (GGUF), fed the same context embeddings as the torch path.

The vision side and the text-segment embeddings stay in torch exactly as today (``MiniGPT4``,
``context_embeds``); only the decoder runs in llama.cpp, through llama-cpp-python's low-level API and
its embedding-batch input (``llama_batch.embd``). Every generated token is embedded by the same torch
table and fed back as an embedding, so the decoder never sees llama.cpp's own (possibly quantised)
token table. The decoding rules are the torch path's (engine.minigpt4.generation, transformers' semantics):
the window rule, repetition penalty on the generated ids only, the min-length rule as transformers
applies it to ``inputs_embeds``, temperature -> top-k 50 -> top-p, torch's RNG for sampling (so
``seed`` means the same thing), end-of-sequence, the template's stop string, streaming deltas and
cancel (checked between every prefill chunk and every step). Beam search is torch-only. The context's KV
cache is kept across requests: a follow-up prefills only what follows its common prefix with the
embeddings fed before (engine.minigpt4.generation.FedEmbeddings; the rest is removed with llama_memory_seq_rm).

Conversion to GGUF: engine.store.gguf_convert (an explicit ``lumen models gguf`` step).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.protocol import ErrorKind, GenerationSettings
from engine.store import gguf_convert
from engine.minigpt4.thread_tuner import ThreadTuner, usable_cores
from engine.store.backends import llamacpp_installed

GGML_TYPE_F32, GGML_TYPE_F16 = 0, 1


class LlamaCppError(RuntimeError):
    def __init__(self, kind: ErrorKind, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path  # the file at fault, when one is (the desktop names it)


def gpu_offload() -> bool:
    """Whether this llama.cpp build offloads to a GPU (Metal, CUDA, Vulkan, ...)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


class LlamaCppDecoder(nn.Module):
    """Stands in for ``LlamaForCausalLM`` inside ``MiniGPT4``: the torch input embeddings (so
    ``context_embeds`` is unchanged) and a llama.cpp context that decodes from embeddings."""

    def __init__(self, gguf_file: Path, embed_tokens: nn.Embedding, n_ctx: int, n_batch: int = 512,
                 threads: int | None = None) -> None:
        super().__init__()
        import llama_cpp

        self.lib = llama_cpp
        self.gguf_file = Path(gguf_file)
        self.embed_tokens = embed_tokens
        self.n_ctx, self.n_batch = n_ctx, n_batch
        self.threads = threads or usable_cores()
        gguf_convert.silence_llama_log(llama_cpp)
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 999  # every layer on the GPU where the build has one (Metal/CUDA/Vulkan)
        self._model = llama_cpp.llama_model_load_from_file(str(self.gguf_file).encode(), mparams)
        if not self._model:
            raise LlamaCppError(ErrorKind.MODEL_MISMATCH, f"{self.gguf_file}: llama.cpp cannot load this file; convert it again")
        self.n_embd = llama_cpp.llama_model_n_embd(self._model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self._model))
        if self.n_embd != embed_tokens.embedding_dim or self.n_vocab != embed_tokens.num_embeddings:
            raise LlamaCppError(ErrorKind.MODEL_MISMATCH,
                                f"{self.gguf_file} does not belong to this model folder; convert it again")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = cparams.n_ubatch = n_batch
        cparams.n_seq_max = 1
        cparams.n_threads = cparams.n_threads_batch = self.threads
        # An f32 file computes in f32 throughout (the parity tests compare it with torch fp32); others f16 KV.
        exact = llama_cpp.llama_model_ftype(self._model) == 0
        cparams.type_k = cparams.type_v = GGML_TYPE_F32 if exact else GGML_TYPE_F16
        if exact:  # the CPU flash-attention kernel rounds Q to f16
            cparams.flash_attn_type = 0  # LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise LlamaCppError(ErrorKind.OUT_OF_MEMORY, f"llama.cpp could not allocate a {n_ctx}-position context")
        self._batch = llama_cpp.llama_batch_init(n_batch, self.n_embd, 1)
        # engine.minigpt4.thread_tuner; not for a count given (benchmarks) or with every layer on a GPU,
        # where the CPU threads hardly work. A tuner of one thread never changes the context's count.
        self.tuner = ThreadTuner(self.threads if threads is None and not gpu_offload() else 1)
        self._set_threads = (self.threads, self.threads)
        from engine.minigpt4.generation import FedEmbeddings

        self.fed = FedEmbeddings()  # what the context's KV cache holds

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def close(self) -> None:
        lib = self.lib
        if getattr(self, "_ctx", None):
            lib.llama_batch_free(self._batch)
            lib.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            lib.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ decoding
    def reset(self) -> None:
        """Empty the KV cache."""
        self.lib.llama_memory_clear(self.lib.llama_get_memory(self._ctx), True)
        self.fed.truncate(0)

    def keep(self, embeds: torch.Tensor) -> int:
        """Keep the KV cache for the common prefix of ``embeds`` (L, H) and what was fed; its length."""
        kept = self.fed.shared(embeds)
        if kept < self.fed.length:
            if not self.lib.llama_memory_seq_rm(self.lib.llama_get_memory(self._ctx), 0, kept, -1):
                self.reset()
                return 0
            self.fed.truncate(kept)
        return kept

    def feed(self, embeds: torch.Tensor, cancel: threading.Event | None = None) -> np.ndarray | None:
        """Decode (L, H) embeddings at the positions after those in the cache; the logits after the last
        one (None when cancelled between chunks)."""
        rows = embeds.detach()
        data = np.ascontiguousarray(rows.to("cpu", torch.float32).numpy())
        n, start = data.shape[0], self.fed.length
        if start + n > self.n_ctx:
            raise LlamaCppError(ErrorKind.BAD_REQUEST, f"the conversation needs {start + n} positions, the context has {self.n_ctx}")
        batch, lib = self._batch, self.lib
        for begin in range(0, n, self.n_batch):
            if cancel is not None and cancel.is_set():
                return None
            chunk = data[begin:begin + self.n_batch]
            m = chunk.shape[0]
            ctypes.memmove(batch.embd, chunk.ctypes.data, chunk.nbytes)
            batch.n_tokens = m
            for i in range(m):
                batch.pos[i] = start + begin + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = begin + i == n - 1
            rc = self._decode(m)
            if rc != 0:
                self.reset()  # what a failed batch left in the cache is unknown
                raise LlamaCppError(ErrorKind.OUT_OF_MEMORY if rc == 1 else ErrorKind.INTERNAL,
                                    f"llama.cpp could not decode (code {rc})")
            self.fed.append(rows[begin:begin + m])
        logits = lib.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(logits, shape=(self.n_vocab,)).copy()

    def _decode(self, m: int) -> int:
        """llama_decode of the batch's ``m`` rows, single-token steps at the thread count the tuner says."""
        tuner, lib = self.tuner, self.lib
        if tuner.most == 1:
            return lib.llama_decode(self._ctx, self._batch)
        wanted = (tuner.threads() if m == 1 else tuner.current, tuner.current)
        if wanted != self._set_threads:
            lib.llama_set_n_threads(self._ctx, *wanted)
            self._set_threads = wanted
        start = time.perf_counter()
        rc = lib.llama_decode(self._ctx, self._batch)
        if m == 1 and rc == 0:
            tuner.observe(wanted[0], time.perf_counter() - start)
        return rc

    def generate_reply(self, tokenizer, embeds: torch.Tensor, settings: GenerationSettings,
                       stop_string: str | None = "###", cancel: threading.Event | None = None,
                       on_delta: Callable[[str], None] | None = None):
        """``engine.minigpt4.generation.generate_reply`` through llama.cpp: same rules, same Reply."""
        from engine.minigpt4.generation import Reply, ReplyTracker, apply_window
        from engine.minigpt4.prompts import clean_answer

        if settings.num_beams != 1:
            raise LlamaCppError(ErrorKind.BAD_REQUEST, "beam search runs only on the torch back-end")
        embeds = apply_window(embeds, settings.max_new_tokens, settings.max_length)
        length = embeds.shape[1]
        tracker = ReplyTracker(tokenizer, stop_string if settings.stop_on_template else None, cancel, on_delta)
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        if cancel is not None and cancel.is_set():
            return Reply("", (), True, None, length)
        eos = tokenizer.eos_id if settings.stop_on_template else None
        # transformers with inputs_embeds: min_length counts the prompt, so it becomes max(min_length - L, 0)
        min_new = max(settings.min_length - length, 0)
        kept = self.keep(embeds[0])
        logits = self.feed(embeds[0, kept:], cancel)
        tracker.put(torch.empty((1, 0), dtype=torch.long))  # the (empty) prompt ids, as generate() passes them
        while logits is not None and len(tracker.ids) < settings.max_new_tokens:
            token = self._choose(torch.from_numpy(logits)[None], tracker.ids, settings, eos, min_new)
            tracker.put(torch.tensor([token]))
            if (eos is not None and token == eos) or tracker(torch.tensor([[token]]), None).item():
                break
            if len(tracker.ids) >= settings.max_new_tokens:
                break
            logits = self.feed(self.embed_tokens(torch.tensor([token])), cancel)
        tracker.end()
        cancelled = cancel is not None and cancel.is_set()
        text = clean_answer(tokenizer.decode(tracker.ids))
        return Reply(text, tuple(tracker.ids), cancelled, tracker.first_token_at, length, kept)

    @staticmethod
    def _choose(scores: torch.Tensor, ids: list[int], settings: GenerationSettings, eos: int | None,
                min_new: int) -> int:
        """One step of transformers' logits processors and warpers (same classes, same order)."""
        from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                            TopKLogitsWarper, TopPLogitsWarper)

        generated = torch.tensor([ids], dtype=torch.long)
        scores = scores.float()
        if settings.repetition_penalty != 1.0:
            scores = RepetitionPenaltyLogitsProcessor(settings.repetition_penalty)(generated, scores)
        if eos is not None and len(ids) < min_new:
            scores[:, eos] = -float("inf")
        if not settings.do_sample:
            return int(scores.argmax(dim=-1))
        if settings.temperature != 1.0:
            scores = TemperatureLogitsWarper(settings.temperature)(generated, scores)
        scores = TopKLogitsWarper(50)(generated, scores)
        if settings.top_p < 1.0:
            scores = TopPLogitsWarper(settings.top_p)(generated, scores)
        return int(torch.multinomial(nn.functional.softmax(scores, dim=-1), num_samples=1))


def read_embedding_table(llm_dir: Path, dtype: torch.dtype = torch.float32) -> nn.Embedding:
    """Only ``model.embed_tokens.weight`` of the folder's LLM (safetensors are read lazily)."""
    from safetensors import safe_open

    for file in sorted(Path(llm_dir).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            if "model.embed_tokens.weight" in handle.keys():
                weight = handle.get_tensor("model.embed_tokens.weight").to(dtype)
                table = nn.Embedding(*weight.shape, _weight=weight)
                table.requires_grad_(False)
                return table
    raise LlamaCppError(ErrorKind.MODEL_MISMATCH, f"{llm_dir}: no text embeddings (model.embed_tokens.weight)")


def load_decoder(model_dir: Path, config_llm: dict, precision: str | None = None) -> LlamaCppDecoder:
    """The llama.cpp decoder of a model folder: ``precision`` or the smallest GGUF converted there."""
    if not llamacpp_installed():
        raise LlamaCppError(ErrorKind.UNAVAILABLE,
                            "the llama.cpp back-end needs llama-cpp-python (pip install 'lumen-assistant[llamacpp]')")
    have = gguf_convert.available(model_dir)
    if precision is None and have:
        precision = have[0]
    if precision is None or precision not in have:
        raise LlamaCppError(ErrorKind.MODEL_MISSING, f"{model_dir.name} has no {precision or ''} GGUF file yet; "
                            f"convert it with: lumen models gguf {model_dir.name} q4_k_m".replace("  ", " "),
                            gguf_convert.gguf_path(model_dir, precision or "q4_k_m"))
    table = read_embedding_table(Path(model_dir) / "llm")
    n_ctx = int(config_llm.get("max_position_embeddings", 2048))
    return LlamaCppDecoder(gguf_convert.gguf_path(model_dir, precision), table, n_ctx)

