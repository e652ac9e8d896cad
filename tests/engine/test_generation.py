"""Streaming, stop strings, cancellation and the window rule of engine.minigpt4.generation."""

from __future__ import annotations

import threading

import pytest
import torch

from engine.minigpt4.generation import ReplyTracker, apply_window, generate_reply
from engine.minigpt4.loading import load_model
from engine.protocol import GenerationSettings
from engine.minigpt4.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def embeds(loaded):
    ids = loaded.tokenizer.encode("Give the following image: a test.###Human: what is it?###Assistant: ", add_bos=True)
    return loaded.model.context_embeds([ids], [])


@pytest.mark.system
def test_streamed_text_equals_the_non_streamed_answer(loaded, embeds):
    settings = GenerationSettings.greedy(max_new_tokens=60, stop_on_template=False)
    deltas: list[str] = []
    streamed = generate_reply(loaded.model, loaded.tokenizer, embeds, settings, on_delta=deltas.append)
    plain = generate_reply(loaded.model, loaded.tokenizer, embeds, settings)
    assert streamed.token_ids == plain.token_ids
    assert "".join(deltas) == plain.text and len(deltas) > 3
    assert all(d for d in deltas)
    beam_deltas: list[str] = []  # beam search cannot stream: the whole answer arrives at the end
    beams = generate_reply(loaded.model, loaded.tokenizer, embeds, GenerationSettings.greedy(
        max_new_tokens=30, stop_on_template=False, num_beams=2), on_delta=beam_deltas.append)
    assert beam_deltas == [beams.text] and beams.text


def test_static_cache_gives_the_same_greedy_tokens(loaded, embeds):
    settings = GenerationSettings.greedy(max_new_tokens=24, stop_on_template=False)
    dynamic = generate_reply(loaded.model, loaded.tokenizer, embeds, settings)
    static = generate_reply(loaded.model, loaded.tokenizer, embeds, settings, static_cache=True)
    assert static.token_ids == dynamic.token_ids


def test_sampling_is_reproducible_with_a_seed(loaded, embeds):
    settings = GenerationSettings(max_new_tokens=20, seed=7, stop_on_template=False)
    a = generate_reply(loaded.model, loaded.tokenizer, embeds, settings)
    b = generate_reply(loaded.model, loaded.tokenizer, embeds, settings)
    assert a.token_ids == b.token_ids


@pytest.mark.system
def test_cancel_takes_effect_within_one_decoding_step(loaded, embeds):
    cancel = threading.Event()
    seen: list[str] = []

    def on_delta(text: str) -> None:
        seen.append(text)
        cancel.set()

    tracker_steps = generate_reply(loaded.model, loaded.tokenizer, embeds,
                                   GenerationSettings.greedy(max_new_tokens=200, stop_on_template=False),
                                   cancel=cancel, on_delta=on_delta)
    assert tracker_steps.cancelled
    full = generate_reply(loaded.model, loaded.tokenizer, embeds,
                          GenerationSettings.greedy(max_new_tokens=200, stop_on_template=False))
    first_delta_tokens = next(n for n in range(1, 200) if loaded.tokenizer.decode(list(full.token_ids[:n])).strip().count(" ") >= 1)
    assert len(tracker_steps.token_ids) <= first_delta_tokens + 1


def test_tracker_stops_at_the_stop_string_and_holds_back_partial_marks(reference_dir):
    tok = Tokenizer(reference_dir / "checkpoints" / "vicuna-tiny" / "tokenizer.model")
    deltas: list[str] = []
    tracker = ReplyTracker(tok, "###", None, deltas.append)
    tracker.put(torch.tensor([]))  # prompt (embeddings: no ids)
    ids = tok.encode("A red square on blue.", add_bos=False) + tok.encode("###Human: more", add_bos=False)[1:]
    stopped_at = None
    for i, token in enumerate(ids):
        tracker.put(torch.tensor([token]))
        if tracker(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1)).item():
            stopped_at = i
            break
    tracker.end()
    assert stopped_at is not None and stopped_at < len(ids) - 1
    assert "".join(deltas) == "A red square on blue."
    assert not any("#" in d for d in deltas)


def test_window_drops_the_oldest_positions():
    x = torch.arange(10).view(1, 10, 1).float()
    assert apply_window(x, max_new_tokens=4, max_length=20).shape[1] == 10
    kept = apply_window(x, max_new_tokens=4, max_length=12)
    assert kept.shape[1] == 8 and kept[0, 0, 0].item() == 2.0


@pytest.mark.parametrize("name", ["follow-up", "cancelled turn", "new image", "other conversation"])
def test_a_kept_kv_cache_answers_exactly_as_an_empty_one(loaded, reference_dir, name):
    """The torch decoder keeps its KV cache for what a request shares with the one before (a follow-up:
    all of turn 1's context but its final lone "▁", which the answer's re-tokenisation merges; another
    conversation: the system prompt up to its image) and computes only the rest."""
    from tests.engine.kv_reuse import assert_kept_cache_answers_as_empty

    assert_kept_cache_answers_as_empty(loaded, reference_dir, name)
