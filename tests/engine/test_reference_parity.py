"""The engine reproduces what the official MiniGPT-4 code computed from the same official files.

Ground truth: shared/fixtures/reference (see its README for tolerances). Every stage is compared
separately so a failure points at one module.
"""

from __future__ import annotations

import pytest
import torch

from engine.minigpt4.generation import _CACHE_ARG, KvCache, generate_reply
from engine.image_io import open_image
from engine.minigpt4.image_processing import preprocess
from engine.minigpt4.loading import load_model
from engine.minigpt4.prompts import TEMPLATES, build_prompt, split_on_images
from engine.protocol import GenerationSettings, Turn
from engine.minigpt4.tokenizer import Tokenizer

IMAGES = ("gray_stripes.png", "photo_office.png", "shapes.png")
CASES = {"main": ("tiny_model_dir", "vicuna0"), "noqformer": ("tiny_noqformer_model_dir", "llama2")}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    fixture, template = CASES[request.param]
    loaded = load_model(request.getfixturevalue(fixture), device="cpu")
    return request.param, loaded, TEMPLATES[template]


def close(actual: torch.Tensor, want: torch.Tensor, atol: float, rtol: float = 1e-4) -> None:
    assert actual.shape == want.shape
    torch.testing.assert_close(actual.float(), want, atol=atol, rtol=rtol)


@pytest.mark.parametrize("name", IMAGES)
def test_pixel_values_exact(reference_dir, expected, name):
    pixels = preprocess([open_image(reference_dir / "images" / name)], size=56)
    close(pixels, expected[f"pixel_values/{name}"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", IMAGES)
def test_every_image_stage(case, reference_dir, expected, name):
    key, loaded, _ = case
    pixels = preprocess([open_image(reference_dir / "images" / name)], size=56)
    with torch.no_grad():
        stages = loaded.model.image_features(pixels)
    compared = 0
    for stage, value in stages.items():
        want = expected.get(f"{key}/image/{name}/{stage}")
        if want is not None:
            close(value, want, atol=1e-4)
            compared += 1
    assert compared == (4 if key == "main" else 3)


def test_tokenizer_examples(reference_dir, manifest):
    tok = Tokenizer(reference_dir / "checkpoints" / "vicuna-tiny" / "tokenizer.model")
    assert tok.pad_id == manifest["cases"]["main"]["model_info"]["pad_token_id"]
    for ex in manifest["cases"]["main"]["tokenizer_examples"]:
        assert tok.encode(ex["text"], add_bos=ex["add_special_tokens"]) == ex["ids"], ex["text"]
    for ex in manifest["cases"]["main"]["decode_examples"]:
        assert tok.decode(ex["ids"], skip_special=ex["skip_special_tokens"]) == ex["text"], ex


def test_decode_keeps_special_tokens_as_transformers_4_30_wrote_them(reference_dir):
    """convert_tokens_to_string of 4.30's slow LlamaTokenizer: reaching a special token that neither opens the
    text nor follows another special token, it writes a space, then the decoded run before it, then the token."""
    tok = Tokenizer(reference_dir / "checkpoints" / "vicuna-tiny" / "tokenizer.model")
    word = tok.encode("exec")
    assert tok.decode([tok.bos_id, tok.bos_id, *word, tok.eos_id, tok.eos_id], skip_special=False) == "<s><s> exec</s></s>"
    assert tok.decode([*word, tok.eos_id, *word], skip_special=False) == " exec</s>exec"  # the space goes first
    assert tok.decode([*word, tok.pad_id, *word], skip_special=False) == " exec$$exec"
    assert tok.decode([*word, tok.pad_id, *word]) == "exec exec"


def test_chat_turns_window_and_greedy_ids(case, expected, manifest):
    """Turn 1, the follow-up (with the answer as stored by the official Chat), and the window rule."""
    key, loaded, template = case
    chat = manifest["cases"][key]["chat"]
    model, tok = loaded.model, loaded.tokenizer
    image = expected[f"{key}/chat/image_embeds"][0]
    history: list[Turn] = []
    for turn in ("turn1", "turn2"):
        spec = chat[turn]
        prompt = build_prompt(template, history, spec["question"], 1 if turn == "turn1" else 0)
        assert prompt == spec["prompt"]
        ids = [tok.encode(s, add_bos=i == 0) for i, s in enumerate(split_on_images(prompt, 1))]
        assert ids == spec["segment_token_ids"]
        embeds = model.context_embeds(ids, [image])
        close(embeds, expected[f"{key}/chat/{turn}/context_embeds"], atol=1e-4)
        with torch.no_grad():
            logits = model.language_model(inputs_embeds=embeds).logits[0, -1]
        close(logits, expected[f"{key}/chat/{turn}/last_logits"], atol=1e-3)
        reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(max_new_tokens=16, stop_on_template=False))
        assert list(reply.token_ids) == spec["greedy_ids"]
        assert reply.text == spec["answer_text_stored_in_conversation"]
        history = [Turn("user", spec["question"], ("img",)), Turn("assistant", reply.text)]
    window = chat["turn2_window"]
    reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(
        max_new_tokens=16, max_length=window["max_length"], stop_on_template=False))
    assert reply.context_positions == window["context_len_after_window"]
    assert list(reply.token_ids) == window["greedy_ids"]


def test_follow_up_and_window_with_the_kv_cache_kept_give_the_official_ids(case, expected, manifest):
    """The same conversation through one KvCache: the follow-up prefills only what follows turn 1's
    context but its last position (the lone "▁" the answer's re-tokenisation merges); the ids stay the
    official ones and the follow-up's last logits, computed on the kept cache, stay close."""
    key, loaded, template = case
    chat = manifest["cases"][key]["chat"]
    model, tok = loaded.model, loaded.tokenizer
    image = expected[f"{key}/chat/image_embeds"][0]
    kv, history, reused = KvCache(), [], []
    settings = GenerationSettings.greedy(max_new_tokens=16, stop_on_template=False)
    for turn in ("turn1", "turn2"):
        spec = chat[turn]
        prompt = build_prompt(template, history, spec["question"], 1 if turn == "turn1" else 0)
        ids = [tok.encode(s, add_bos=i == 0) for i, s in enumerate(split_on_images(prompt, 1))]
        embeds = model.context_embeds(ids, [image])
        reply = generate_reply(model, tok, embeds, settings, kv=kv)
        assert list(reply.token_ids) == spec["greedy_ids"]
        assert reply.text == spec["answer_text_stored_in_conversation"]
        reused.append((reply.reused_positions, embeds.shape[1]))
        history = [Turn("user", spec["question"], ("img",)), Turn("assistant", reply.text)]
    (none, turn1_length), (kept, _) = reused
    assert none == 0 and kept == turn1_length - 1
    last = kv.keep(embeds)  # the follow-up's whole context is cached now, but for the position fed again
    assert last == embeds.shape[1] - 1
    with torch.no_grad():
        logits = model.language_model(inputs_embeds=embeds[:, last:], **{_CACHE_ARG: kv.kv}).logits[0, -1]
    close(logits, expected[f"{key}/chat/turn2/last_logits"], atol=1e-3)
    window = chat["turn2_window"]
    reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(
        max_new_tokens=16, max_length=window["max_length"], stop_on_template=False), kv=kv)
    assert reply.context_positions == window["context_len_after_window"] and reply.reused_positions == 0
    assert list(reply.token_ids) == window["greedy_ids"]


def test_demo_repetition_penalty_sees_only_generated_ids(case, expected, manifest):
    key, loaded, template = case
    spec = manifest["cases"][key]["chat"]["turn1"]
    if "greedy_ids_repetition_penalty_1.05" not in spec:
        pytest.skip("no repetition-penalty reference for this case")
    embeds = expected[f"{key}/chat/turn1/context_embeds"]
    reply = generate_reply(loaded.model, loaded.tokenizer, embeds, GenerationSettings.greedy(
        max_new_tokens=16, repetition_penalty=1.05, stop_on_template=False))
    assert list(reply.token_ids) == spec["greedy_ids_repetition_penalty_1.05"]


def test_april_2023_template(tiny_model_dir, expected, manifest):
    loaded = load_model(tiny_model_dir, device="cpu")
    spec = manifest["cases"]["main"]["chat_april2023"]
    prompt = build_prompt(TEMPLATES["vicuna0_april2023"], [], spec["question"], 1)
    assert prompt == spec["prompt"]
    ids = [loaded.tokenizer.encode(s, add_bos=i == 0) for i, s in enumerate(split_on_images(prompt, 1))]
    assert ids == spec["segment_token_ids"]
    embeds = loaded.model.context_embeds(ids, [expected["main/chat/image_embeds"][0]])
    close(embeds, expected["main/chat_april2023/turn1/context_embeds"], atol=1e-4)
    reply = generate_reply(loaded.model, loaded.tokenizer, embeds,
                           GenerationSettings.greedy(max_new_tokens=16, stop_on_template=False))
    assert list(reply.token_ids) == spec["greedy_ids"]


def test_the_thread_count_the_tuner_picks_never_changes_an_answer(case, expected, manifest):
    """On the CPU, engine.minigpt4.thread_tuner sets torch's thread count step by step; here it switches
    on every step (1, 2, 1, ...), read back from torch, and turn 1 still gives the official greedy ids.
    Afterwards torch runs at the count the tuner settled on (the vision encoder and the next prompt)."""
    from tests.engine.thread_switch import EveryStepSwitches

    key, loaded, template = case
    spec = manifest["cases"][key]["chat"]["turn1"]
    model, tok = loaded.model, loaded.tokenizer

    prompt = build_prompt(template, [], spec["question"], 1)
    ids = [tok.encode(s, add_bos=i == 0) for i, s in enumerate(split_on_images(prompt, 1))]
    embeds = model.context_embeds(ids, [expected[f"{key}/chat/image_embeds"][0]])
    before = torch.get_num_threads()
    tuner = EveryStepSwitches(torch.get_num_threads)
    tuner.current = 1  # settled on one thread
    try:
        reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(max_new_tokens=16, stop_on_template=False),
                               threads=tuner)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert list(reply.token_ids) == spec["greedy_ids"]
    assert len(tuner.seen) == len(spec["greedy_ids"]) - 1  # every step after the first was timed
    assert tuner.switched_every_step()
    assert after == 1
