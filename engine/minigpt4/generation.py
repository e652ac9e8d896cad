"""Streaming generation from an embedding sequence: the official decoding, with stop and cancel.

``generate(inputs_embeds=...)`` runs on the caller's thread; a ``BaseStreamer`` subclass turns new
token ids into text deltas at word boundaries, and the same object is a ``StoppingCriteria`` that
ends generation on the template's stop string ("###", the demo's rule) or when ``cancel`` is set
(checked every decoding step). References: official ``Chat.answer``/``answer_prepare`` and the
demo's ``StoppingCriteriaSub``; docs/minigpt4-reference.md sections 7.4-7.6.

Follow-ups reuse the KV cache (``KvCache``; the llama.cpp decoder does the same in its context): the
context embeddings are computed exactly as the official code does, and only the positions after their
longest common prefix with what the cache was fed are prefilled again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import transformers
from transformers import DynamicCache, GenerationConfig, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from engine.minigpt4.prompts import clean_answer
from engine.minigpt4.thread_tuner import ThreadTuner
from engine.protocol import GenerationSettings
from engine.minigpt4.tokenizer import Tokenizer


@dataclass(frozen=True)
class Reply:
    text: str  # the clean answer (official post-processing)
    token_ids: tuple[int, ...]
    cancelled: bool
    first_token_seconds: float | None
    context_positions: int
    reused_positions: int = 0  # leading context positions whose KV cache was kept, not prefilled again


def apply_window(embeds: torch.Tensor, max_new_tokens: int, max_length: int) -> torch.Tensor:
    """Official context rule: drop the first max(0, L + N - M) positions (a raw slice)."""
    begin = max(0, embeds.shape[1] + max_new_tokens - max_length)
    return embeds[:, begin:]


def _bits(rows: torch.Tensor) -> torch.Tensor:
    return rows.contiguous().view(torch.uint8).reshape(rows.shape[0], -1)


class FedEmbeddings:
    """The embeddings a decoder's KV cache was fed, position by position.

    The cached state of a position depends only on the embeddings fed up to it (positions start at 0),
    so a new context may keep the cache for its longest common prefix with these rows, compared bit
    for bit, and feed only the rest. Turn N+1's context starts with turn N's, except where the official
    re-tokenisation of the answer differs from what was fed (the prompt's final lone "▁" merges into it);
    a new image, a window-rule slice or a different conversation simply share less."""

    def __init__(self) -> None:
        self._rows: list[torch.Tensor] = []
        self.length = 0

    def append(self, rows: torch.Tensor) -> None:
        self._rows.append(rows.detach())
        self.length += rows.shape[0]

    def truncate(self, length: int) -> None:
        if length < self.length:
            self._rows = [torch.cat(self._rows)[:length]] if length > 0 else []
            self.length = max(length, 0)

    def shared(self, embeds: torch.Tensor) -> int:
        """How many leading rows of ``embeds`` (L, H) were fed already; at most L - 1, since the last
        position is always fed again for the logits of the first new token."""
        n = min(self.length, embeds.shape[0] - 1)
        if n <= 0:
            return 0
        fed = torch.cat(self._rows)[:n]
        if fed.dtype != embeds.dtype or fed.device != embeds.device:
            return 0
        same = (_bits(fed) == _bits(embeds[:n])).all(dim=-1)
        return n if bool(same.all()) else int(same.int().argmin())


# transformers 5 renamed generate()'s past_key_values to cache (the old name warns from 5.24 on)
_CACHE_ARG = "cache" if tuple(int(p) for p in transformers.__version__.split(".")[:2]) >= (5, 24) else "past_key_values"


class KvCache:
    """The torch decoder's KV cache, kept from one request to the next (``FedEmbeddings``)."""

    def __init__(self) -> None:
        self.kv: DynamicCache | None = None
        self.fed = FedEmbeddings()

    def clear(self) -> None:
        self.kv, self.fed = None, FedEmbeddings()

    def keep(self, embeds: torch.Tensor) -> int:
        """Crop the cache to its common prefix with ``embeds`` (1, L, H); the positions kept."""
        kept = self.fed.shared(embeds[0]) if self.kv is not None else 0
        if kept == 0:
            self.kv, self.fed = DynamicCache(), FedEmbeddings()
            return 0
        if self.kv.get_seq_length() > kept:
            self.kv.crop(kept - self.kv.get_seq_length())  # a negative count: drop from the end
        self.fed.truncate(kept)
        return kept

    def record(self, embeds: torch.Tensor, kept: int, new_rows: torch.Tensor) -> None:
        """After generate(): the cache holds the context and every generated token fed back."""
        fed = torch.cat([embeds[0, kept:], new_rows])[:self.kv.get_seq_length() - kept]
        if kept + fed.shape[0] != self.kv.get_seq_length():
            self.clear()  # not what this class expects transformers to leave: start afresh next time
            return
        self.fed.append(fed)


class ReplyTracker(BaseStreamer, StoppingCriteria):
    """Collects generated ids, emits clean text deltas, and decides when to stop."""

    def __init__(self, tokenizer: Tokenizer, stop_string: str | None, cancel: threading.Event | None,
                 on_delta: Callable[[str], None] | None) -> None:
        self.tokenizer = tokenizer
        self.stop_string = stop_string
        self.cancel = cancel
        self.on_delta = on_delta
        self.ids: list[int] = []
        self.emitted = ""
        self.stopped_by_string = False
        self.first_token_at: float | None = None
        self._prompt_seen = False

    # BaseStreamer -----------------------------------------------------------
    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first passes the prompt ids (empty for embeddings)
            self._prompt_seen = True
            if value.numel() == 0 or value.dim() > 1:
                return
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        self._emit(final=False)

    def end(self) -> None:
        self._emit(final=True)

    # StoppingCriteria -------------------------------------------------------
    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        stop = self.stopped_by_string or (self.cancel is not None and self.cancel.is_set())
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    # text -------------------------------------------------------------------
    def visible_text(self) -> str:
        text = self.tokenizer.decode(self.ids)
        if self.stop_string and self.stop_string in text:
            self.stopped_by_string = True
            text = text.split(self.stop_string)[0]
        return text

    def _emit(self, final: bool) -> None:
        text = self.visible_text().lstrip()
        if final:
            ready = text.rstrip()
        else:
            if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence from byte-fallback pieces
                return
            if self.stop_string:  # hold back a possible start of the stop string ("#", "##")
                for k in range(len(self.stop_string) - 1, 0, -1):
                    if text.endswith(self.stop_string[:k]):
                        text = text[:-k]
                        break
            cut = max(text.rfind(" "), text.rfind("\n"))
            ready = text[:cut] if cut > 0 else ""
        if len(ready) > len(self.emitted) and ready.startswith(self.emitted):
            delta = ready[len(self.emitted):]
            self.emitted = ready
            if self.on_delta is not None:
                self.on_delta(delta)


class TunedThreads(StoppingCriteria):
    """On the CPU: times each decoding step of generate() and sets torch's thread count for the next one
    as the tuner says (engine.minigpt4.thread_tuner); never stops anything itself."""

    def __init__(self, tuner: ThreadTuner) -> None:
        self.tuner = tuner
        self._threads = tuner.current
        self._last: float | None = None
        torch.set_num_threads(self._threads)  # the prompt at the count the tuner settled on

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        now = time.perf_counter()
        if self._last is not None:  # from one call to the next: one decoding step
            self.tuner.observe(self._threads, now - self._last)
        wanted = self.tuner.threads()
        if wanted != self._threads:
            torch.set_num_threads(wanted)
            self._threads = wanted
        self._last = time.perf_counter()
        return torch.zeros((input_ids.shape[0],), dtype=torch.bool, device=input_ids.device)

    def done(self) -> None:
        """Back to the settled count (the vision encoder and the next prompt run at it)."""
        torch.set_num_threads(self.tuner.current)


def generation_config(settings: GenerationSettings, tokenizer: Tokenizer, static_cache: bool = False) -> GenerationConfig:
    kwargs = dict(
        max_new_tokens=settings.max_new_tokens, num_beams=settings.num_beams, do_sample=settings.do_sample,
        repetition_penalty=settings.repetition_penalty, length_penalty=settings.length_penalty,
        min_length=settings.min_length, bos_token_id=tokenizer.bos_id, pad_token_id=tokenizer.pad_id,
        eos_token_id=tokenizer.eos_id if settings.stop_on_template else None,
    )
    if static_cache:  # fixed-shape decoding step: transformers compiles it (CUDA graphs) on a GPU
        kwargs.update(cache_implementation="static")
    if settings.do_sample:  # top_k keeps transformers' default of 50, as in the official demo
        kwargs.update(top_p=settings.top_p, temperature=settings.temperature)
    return GenerationConfig(**kwargs)


@torch.inference_mode()
def generate_reply(model, tokenizer: Tokenizer, embeds: torch.Tensor, settings: GenerationSettings,
                   stop_string: str | None = "###", cancel: threading.Event | None = None,
                   on_delta: Callable[[str], None] | None = None, static_cache: bool = False,
                   kv: KvCache | None = None, threads: ThreadTuner | None = None) -> Reply:
    """Decode an answer after ``embeds`` (1, L, H). Deltas reach ``on_delta`` as they become final.
    ``kv``: keep the KV cache across calls (greedy or sampling with the dynamic cache; beam search and
    the static cache prefill everything and leave ``kv`` as it is). ``threads``: on the CPU, the tuner
    that sets torch's thread count step by step. The llama.cpp decoder always keeps its own cache and
    tuner."""
    if hasattr(model.language_model, "generate_reply"):  # the llama.cpp decoder (engine.minigpt4.llamacpp_backend)
        return model.language_model.generate_reply(tokenizer, embeds, settings, stop_string, cancel, on_delta)
    embeds = apply_window(embeds, settings.max_new_tokens, settings.max_length)
    tracker = ReplyTracker(tokenizer, stop_string if settings.stop_on_template else None, cancel, on_delta)
    if settings.seed is not None:
        torch.manual_seed(settings.seed)
    if cancel is not None and cancel.is_set():
        return Reply("", (), True, None, embeds.shape[1])
    lm = model.language_model
    attention = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
    streaming = settings.num_beams == 1  # transformers streams only without beam search
    if not streaming or static_cache:
        kv = None
    kept = kv.keep(embeds) if kv is not None else 0
    autocast = (torch.autocast("cuda", dtype=embeds.dtype) if embeds.device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    cache = {_CACHE_ARG: kv.kv} if kv is not None else {}
    tuned = TunedThreads(threads) if threads is not None and embeds.device.type == "cpu" else None
    try:
        with autocast:
            out = lm.generate(inputs_embeds=embeds, attention_mask=attention,
                              generation_config=generation_config(settings, tokenizer, static_cache),
                              stopping_criteria=StoppingCriteriaList([tracker] + ([tuned] if tuned else [])),
                              streamer=tracker if streaming else None, **cache)
    except BaseException:
        if kv is not None:
            kv.clear()  # a half-written cache is never reused
        raise
    finally:
        if tuned is not None:
            tuned.done()
    if kv is not None:
        generated = torch.tensor(tracker.ids, dtype=torch.long, device=embeds.device)
        kv.record(embeds, kept, lm.get_input_embeddings()(generated))
    if not streaming:
        tracker.ids = out[0].tolist()
        tracker.first_token_at = time.perf_counter()
    tracker.end()
    cancelled = cancel is not None and cancel.is_set()
    text = clean_answer(tracker.tokenizer.decode(tracker.ids))
    return Reply(text, tuple(tracker.ids), cancelled, tracker.first_token_at, embeds.shape[1], kept)
