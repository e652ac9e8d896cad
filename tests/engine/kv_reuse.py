"""KV-cache reuse checks shared by the torch and llama.cpp tests: a request answered after others with
the cache kept gives exactly what it gives from an empty cache, and the positions each forward pass
computed are counted where they are computed (torch: the first decoder layer; llama.cpp: its own
performance counters)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

from engine.minigpt4.describer import Describer
from engine.protocol import Describe, GenerationSettings, ImageInput, Turn

GREEDY = GenerationSettings.greedy(max_new_tokens=16, stop_on_template=False)


def empty_cache(describer: Describer) -> None:
    describer.kv.clear()
    decoder = describer.loaded.model.language_model
    if hasattr(decoder, "reset"):  # llama.cpp
        decoder.reset()


@contextmanager
def positions_computed(describer: Describer):
    """A list that receives the number of positions of every forward pass of the language model."""
    seen: list[int] = []
    decoder = describer.loaded.model.language_model
    if hasattr(decoder, "lib"):  # llama.cpp: prompt (n_p_eval) and single-token (n_eval) evaluations
        lib = decoder.lib
        lib.llama_perf_context_reset(decoder._ctx)
        yield seen
        data = lib.llama_perf_context(decoder._ctx)
        seen.extend([data.n_p_eval, data.n_eval])
        return
    hook = decoder.model.layers[0].register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append((args[0] if args else kwargs["hidden_states"]).shape[1]), with_kwargs=True)
    try:
        yield seen
    finally:
        hook.remove()


def image(reference_dir: Path, image_id: str, name: str) -> ImageInput:
    return ImageInput(image_id, (reference_dir / "images" / name).read_bytes())


def scenario(name: str, reference_dir: Path, describer: Describer):
    """(the first request, a function of its reply giving the second) for each way a cache is shared."""
    a, b = image(reference_dir, "a", "shapes.png"), image(reference_dir, "b", "photo_office.png")
    first = Describe(1, "c1", "What is in this picture?", (), ("a",), (a,), GREEDY)

    def follow(reply, question="What colour is it?", new=(), images=()):  # noqa: ANN001
        history = (Turn("user", first.question, ("a",)), Turn("assistant", reply.text))
        return Describe(2, "c1", question, history, new, images, GREEDY)

    if name == "follow-up":
        return first, follow
    if name == "new image":
        return first, lambda reply: follow(reply, "And this one?", ("b",), (b,))
    if name == "other conversation":
        return first, lambda reply: Describe(2, "c2", "Describe it.", (), ("b",), (b,), GREEDY)
    raise ValueError(name)


def with_and_without_reuse(describer: Describer, first: Describe, second, cancel_first: bool = False):  # noqa: ANN001
    """The second request's (reply, positions computed) after the first with the cache kept, and from an
    empty cache. ``cancel_first``: the first answer is cancelled at its first delta."""
    empty_cache(describer)
    cancel = threading.Event()
    reply1, _ = describer.describe(first, cancel, (lambda _t: cancel.set()) if cancel_first else None)
    assert reply1.cancelled == cancel_first
    request = second(reply1)
    with positions_computed(describer) as reused:
        kept, stats = describer.describe(request)
    empty_cache(describer)
    with positions_computed(describer) as full:
        fresh, _ = describer.describe(request)
    assert stats.reused_positions == kept.reused_positions and fresh.reused_positions == 0
    return reply1, kept, fresh, sum(reused), sum(full)


def assert_kept_cache_answers_as_empty(loaded, reference_dir: Path, name: str) -> None:  # noqa: ANN001
    """One scenario of ``scenario`` through ``loaded`` (either back-end): a kept KV cache gives the ids and
    text an empty one gives, and computes fewer positions by exactly the number it kept."""
    describer = Describer(loaded)
    first, second = scenario("follow-up" if name == "cancelled turn" else name, reference_dir, describer)
    reply1, kept, fresh, computed, computed_fresh = with_and_without_reuse(
        describer, first, second, cancel_first=name == "cancelled turn")
    assert kept.token_ids == fresh.token_ids and kept.text == fresh.text and len(kept.token_ids) == 16
    assert 0 < kept.reused_positions < kept.context_positions
    assert computed_fresh - computed == kept.reused_positions  # fewer positions computed, by exactly those kept
    if name != "other conversation":
        assert kept.reused_positions == reply1.context_positions - 1
