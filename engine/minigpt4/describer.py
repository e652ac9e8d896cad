"""Describer: a loaded model plus the per-conversation image cache; one ``Describe`` -> one reply.

Each image is decoded, preprocessed and encoded once per conversation; every follow-up reuses its
embeddings, and the language model keeps its KV cache for the part of the context a follow-up shares
with the previous request (engine.minigpt4.generation.KvCache). The caches are only caches: the desktop
sends the whole conversation every time, and an image's bytes again whenever the engine says it lacks
them (``MissingImage`` -> ``ImagesNeeded``), so a restarted engine rebuilds them without losing anything.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import torch

from engine.minigpt4.generation import KvCache, Reply, generate_reply
from engine.minigpt4.thread_tuner import ThreadTuner, usable_cores
from engine.image_io import open_image
from engine.minigpt4.image_processing import preprocess
from engine.minigpt4.loading import LoadedModel
from engine.minigpt4.prompts import build_prompt, get_template, split_on_images, with_context
from engine.protocol import Describe, ErrorKind, GenerationStats

MAX_CACHED_IMAGES = 64


class MissingImage(ValueError):
    """The prompt refers to images this engine has neither cached nor been sent (the worker answers
    ``ImagesNeeded`` and the desktop sends the request again with their bytes)."""

    kind = ErrorKind.BAD_REQUEST

    def __init__(self, image_ids: tuple[str, ...]) -> None:
        super().__init__(f"image bytes not sent for {list(image_ids)}")
        self.image_ids = image_ids


class Describer:
    def __init__(self, loaded: LoadedModel, template: str | None = None, static_cache: bool = False) -> None:
        self.loaded = loaded
        self.static_cache = static_cache
        self.template = get_template(template or loaded.config.template)
        self._cache: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self.kv = KvCache()  # the torch decoder's; the llama.cpp decoder keeps its own
        # torch's CPU threads, tuned step by step (engine.minigpt4.thread_tuner); llama.cpp tunes its own
        on_cpu = loaded.device.type == "cpu" and not hasattr(loaded.model.language_model, "generate_reply")
        self.threads = ThreadTuner(usable_cores()) if on_cpu else None

    def forget(self, conversation_id: str) -> None:
        for key in [k for k in self._cache if k[0] == conversation_id]:
            del self._cache[key]

    @torch.inference_mode()
    def image_embeddings(self, request: Describe) -> tuple[list[torch.Tensor], int, int, float]:
        """Embeddings of every image the prompt refers to, in prompt order; (embeds, encoded, cached, secs)."""
        order = [i for turn in request.history if turn.role == "user" for i in turn.image_ids]
        order += list(request.new_image_ids)
        keys = [(request.conversation_id, i) for i in order]
        data = {img.image_id: img for img in request.images}
        todo = [i for i in dict.fromkeys(order) if (request.conversation_id, i) not in self._cache]
        start = time.perf_counter()
        if todo:
            missing = tuple(i for i in todo if i not in data)
            if missing:
                raise MissingImage(missing)
            config = self.loaded.config
            pixels = preprocess([open_image(data[i]) for i in todo], config.vision.image_size,
                                config.image_mean, config.image_std)
            embeds = self.loaded.model.encode_image(pixels)
            for image_id, emb in zip(todo, embeds):
                self._cache[(request.conversation_id, image_id)] = emb
        for key in keys:
            self._cache.move_to_end(key)
        embeds = [self._cache[key] for key in keys]
        # Evict the least recently used images, never one this request needs (they are at the end):
        # a request with more images than the limit keeps them all until the next request.
        needed = set(keys)
        while len(self._cache) > MAX_CACHED_IMAGES and next(iter(self._cache)) not in needed:
            self._cache.popitem(last=False)
        cached = len(set(order)) - len(todo)
        return embeds, len(todo), cached, time.perf_counter() - start

    @torch.inference_mode()
    def context(self, request: Describe, images: list[torch.Tensor]) -> torch.Tensor:
        question = with_context(request.question, request.context)
        prompt = build_prompt(self.template, request.history, question, len(request.new_image_ids))
        segments = split_on_images(prompt, len(images))
        tok = self.loaded.tokenizer
        ids = [tok.encode(s, add_bos=i == 0) for i, s in enumerate(segments)]
        return self.loaded.model.context_embeds(ids, images)

    def describe(self, request: Describe, cancel: threading.Event | None = None,
                 on_delta: Callable[[str], None] | None = None) -> tuple[Reply, GenerationStats]:
        start = time.perf_counter()
        first_delta: list[float] = []

        def delta(text: str) -> None:
            if not first_delta:
                first_delta.append(time.perf_counter() - start)
            if on_delta is not None:
                on_delta(text)

        images, encoded, cached, image_seconds = self.image_embeddings(request)
        embeds = self.context(request, images)
        reply = generate_reply(self.loaded.model, self.loaded.tokenizer, embeds, request.settings,
                               stop_string=self.template.stop_string, cancel=cancel, on_delta=delta,
                               static_cache=self.static_cache, kv=self.kv, threads=self.threads)
        stats = GenerationStats(
            prompt_positions=reply.context_positions, reused_positions=reply.reused_positions,
            new_tokens=len(reply.token_ids), images_encoded=encoded, images_from_cache=cached, image_seconds=image_seconds,
            first_token_seconds=(reply.first_token_seconds - start) if reply.first_token_seconds else 0.0,
            first_delta_seconds=first_delta[0] if first_delta else 0.0,
            total_seconds=time.perf_counter() - start,
        )
        return reply, stats
