"""The llama.cpp back-end: the parity models converted to f32 GGUF give the official greedy ids.

Same ground truth as test_reference_parity (shared/fixtures/reference): turn 1, the follow-up and the
window rule through the real llama.cpp decoder fed our context embeddings; last logits close. Quantised
files: agreement is printed, not asserted.
"""

from __future__ import annotations

import shutil
import threading

import pytest
import torch

from engine.store import gguf_convert
from engine.store.backends import choose_backend
from engine.minigpt4.generation import generate_reply
from engine.minigpt4.loading import ModelLoadError, load_model
from engine.minigpt4.prompts import TEMPLATES, build_prompt, split_on_images
from engine.protocol import ErrorKind, GenerationSettings, Turn

CASES = {"main": ("tiny_model_dir", "vicuna0"), "noqformer": ("tiny_noqformer_model_dir", "llama2")}
GREEDY16 = dict(max_new_tokens=16, stop_on_template=False)


def gguf_copy(source, tmp_path_factory, precision: str):
    folder = tmp_path_factory.mktemp("gguf") / source.name
    shutil.copytree(source, folder)
    gguf_convert.convert(folder, precision)
    return folder


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    fixture, template = CASES[request.param]
    folder = gguf_copy(request.getfixturevalue(fixture), tmp_path_factory, "f32")
    torch_loaded = load_model(folder, device="cpu")
    loaded = load_model(folder, backend="llamacpp")
    return request.param, loaded, torch_loaded, TEMPLATES[template]


def test_conversion_writes_the_llama_decoder_and_the_vocabulary(case):
    import gguf

    _, loaded, _, _ = case
    reader = gguf.GGUFReader(str(loaded.model.language_model.gguf_file))
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "output.weight", "output_norm.weight", "blk.1.attn_q.weight", "blk.1.ffn_down.weight"} <= names
    assert len(names) == 3 + 2 * 9
    assert "llama" in loaded.summary and "llama.cpp f32" in loaded.summary


def test_turns_window_and_greedy_ids_equal_the_official_ones(case, expected, manifest):
    key, loaded, _, template = case
    chat = manifest["cases"][key]["chat"]
    model, tok = loaded.model, loaded.tokenizer
    decoder = model.language_model
    image = expected[f"{key}/chat/image_embeds"][0]
    history: list[Turn] = []
    for turn in ("turn1", "turn2"):
        spec = chat[turn]
        prompt = build_prompt(template, history, spec["question"], 1 if turn == "turn1" else 0)
        ids = [tok.encode(s, add_bos=i == 0) for i, s in enumerate(split_on_images(prompt, 1))]
        embeds = model.context_embeds(ids, [image])
        torch.testing.assert_close(embeds, expected[f"{key}/chat/{turn}/context_embeds"], atol=1e-4, rtol=1e-4)
        decoder.reset()
        logits = torch.from_numpy(decoder.feed(embeds[0]))
        torch.testing.assert_close(logits, expected[f"{key}/chat/{turn}/last_logits"], atol=1e-3, rtol=1e-4)
        decoder.reset()  # every turn from an empty cache here (the test below keeps it)
        reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(**GREEDY16))
        assert list(reply.token_ids) == spec["greedy_ids"] and reply.reused_positions == 0
        assert reply.text == spec["answer_text_stored_in_conversation"]
        history = [Turn("user", spec["question"], ("img",)), Turn("assistant", reply.text)]
    window = chat["turn2_window"]
    reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(**GREEDY16, max_length=window["max_length"]))
    assert reply.context_positions == window["context_len_after_window"]
    assert list(reply.token_ids) == window["greedy_ids"]


def test_follow_up_and_window_with_the_kv_cache_kept_give_the_official_ids(case, expected, manifest):
    """One llama.cpp context through the conversation: the follow-up prefills only what follows turn 1's
    context but its last position (the lone "▁" the answer's re-tokenisation merges); the ids stay the
    official ones and the follow-up's last logits, computed on the kept cache, stay close."""
    key, loaded, _, template = case
    chat = manifest["cases"][key]["chat"]
    model, tok = loaded.model, loaded.tokenizer
    decoder = model.language_model
    image = expected[f"{key}/chat/image_embeds"][0]
    decoder.reset()
    history: list[Turn] = []
    reused = []
    for turn in ("turn1", "turn2"):
        spec = chat[turn]
        prompt = build_prompt(template, history, spec["question"], 1 if turn == "turn1" else 0)
        ids = [tok.encode(s, add_bos=i == 0) for i, s in enumerate(split_on_images(prompt, 1))]
        embeds = model.context_embeds(ids, [image])
        reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(**GREEDY16))
        assert list(reply.token_ids) == spec["greedy_ids"]
        assert reply.text == spec["answer_text_stored_in_conversation"]
        reused.append((reply.reused_positions, embeds.shape[1]))
        history = [Turn("user", spec["question"], ("img",)), Turn("assistant", reply.text)]
    (none, turn1_length), (kept, _) = reused
    assert none == 0 and kept == turn1_length - 1
    last = decoder.keep(embeds[0])  # the follow-up's whole context is cached now, but for the position fed again
    assert last == embeds.shape[1] - 1
    logits = torch.from_numpy(decoder.feed(embeds[0, last:]))
    torch.testing.assert_close(logits, expected[f"{key}/chat/turn2/last_logits"], atol=1e-3, rtol=1e-4)
    window = chat["turn2_window"]
    reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(**GREEDY16, max_length=window["max_length"]))
    assert reply.context_positions == window["context_len_after_window"] and reply.reused_positions == 0
    assert list(reply.token_ids) == window["greedy_ids"]


@pytest.mark.parametrize("name", ["follow-up", "cancelled turn", "new image", "other conversation"])
def test_a_kept_kv_cache_answers_exactly_as_an_empty_one(case, reference_dir, name):
    """As tests/engine/test_generation.py's test of the same name, through llama.cpp; the positions
    computed are llama.cpp's own count (its performance counters)."""
    from tests.engine.kv_reuse import assert_kept_cache_answers_as_empty

    assert_kept_cache_answers_as_empty(case[1], reference_dir, name)


def test_repetition_penalty_sees_only_generated_ids(case, expected, manifest):
    key, loaded, _, _ = case
    spec = manifest["cases"][key]["chat"]["turn1"]
    if "greedy_ids_repetition_penalty_1.05" not in spec:
        pytest.skip("no repetition-penalty reference for this case")
    reply = generate_reply(loaded.model, loaded.tokenizer, expected[f"{key}/chat/turn1/context_embeds"],
                           GenerationSettings.greedy(**GREEDY16, repetition_penalty=1.05))
    assert list(reply.token_ids) == spec["greedy_ids_repetition_penalty_1.05"]


def test_demo_settings_sampling_stop_rules_and_deltas_match_the_torch_path(case, expected):
    """The demo's defaults (sampling, top-p 0.9, penalty 1.05, "###" and end-of-sequence) with one seed."""
    key, loaded, torch_loaded, _ = case
    embeds = expected[f"{key}/chat/turn1/context_embeds"]
    settings = GenerationSettings(max_new_tokens=40, seed=7)
    results = []
    for each in (torch_loaded, loaded):
        deltas: list[str] = []
        reply = generate_reply(each.model, each.tokenizer, embeds, settings, on_delta=deltas.append)
        results.append((reply.token_ids, reply.text, deltas))
    assert results[0] == results[1]
    assert "".join(results[1][2]) == results[1][1]


def test_cancel_from_a_delta_stops_the_decoder(case, expected):
    key, loaded, _, _ = case
    cancel = threading.Event()
    reply = generate_reply(loaded.model, loaded.tokenizer, expected[f"{key}/chat/turn1/context_embeds"],
                           GenerationSettings.greedy(max_new_tokens=200, stop_on_template=False),
                           cancel=cancel, on_delta=lambda _: cancel.set())
    assert reply.cancelled and 0 < len(reply.token_ids) < 200


def test_quantised_files_from_llama_cpps_quantiser_answer(quantisable_model_dir, tmp_path_factory, capsys):
    folder = gguf_copy(quantisable_model_dir, tmp_path_factory, "f32")
    reference = load_model(folder, device="cpu")
    ids = [reference.tokenizer.encode("Describe the picture in detail.", add_bos=True)]
    embeds = reference.model.context_embeds(ids, [])
    want = generate_reply(reference.model, reference.tokenizer, embeds, GenerationSettings.greedy(**GREEDY16)).token_ids
    for precision in ("f16", "q8_0", "q4_k_m"):
        gguf_convert.convert(folder, precision)
        loaded = load_model(folder, backend="llamacpp", gguf_precision=precision)
        got = generate_reply(loaded.model, loaded.tokenizer, embeds, GenerationSettings.greedy(**GREEDY16)).token_ids
        assert len(got) == 16
        agree = sum(a == b for a, b in zip(got, want))
        with capsys.disabled():
            print(f"\n{precision}: {agree}/16 greedy ids as torch fp32")
    assert not gguf_convert.gguf_path(folder, "f16").with_suffix(".converting").exists()
    assert gguf_convert.available(folder) == ["q4_k_m", "q8_0", "f16", "f32"]


def test_a_folder_without_gguf_is_a_typed_failure(tiny_model_dir):
    with pytest.raises(ModelLoadError) as err:
        load_model(tiny_model_dir, backend="llamacpp")
    assert err.value.kind is ErrorKind.MODEL_MISSING
    assert "lumen models gguf" in str(err.value)
    assert err.value.path == str(gguf_convert.gguf_path(tiny_model_dir, "q4_k_m"))  # the desktop says what to do


def test_the_worker_sizes_the_folder_it_is_asked_to_load(tiny_model_dir, monkeypatch):
    """With a GPU the worker reads the folder's configuration (converter.read_model_config) to weigh
    the model against the free memory. The GPU is simulated (1 KiB free, then 1 TiB)."""
    import torch

    from engine.protocol import LoadModel
    from engine.worker import _Session

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    request = LoadModel(str(tiny_model_dir), backend="auto", device="auto")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (1024, 1 << 40))
    assert "the NVIDIA GPU has too little free memory" in _Session.backend_for(request)[1]
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (1 << 40, 1 << 40))
    assert _Session.backend_for(request) == ("torch", "torch on the NVIDIA GPU, which has enough free memory")


def test_backend_choice_is_explained():
    gb = 1 << 30
    assert choose_backend("auto", 24 * gb, 16 * gb, ["q4_k_m"], True)[0] == "torch"
    backend, why = choose_backend("auto", 8 * gb, 16 * gb, ["q4_k_m"], True)
    assert backend == "llamacpp" and "q4_k_m" in why and "too little" in why
    backend, why = choose_backend("auto", None, 16 * gb, [], True)
    assert backend == "torch" and "lumen models gguf" in why
    assert choose_backend("llamacpp", 24 * gb, 16 * gb, [], True)[0] == "llamacpp"  # Settings wins ...
    assert "no GGUF file yet" in choose_backend("llamacpp", None, 0, [], True)[1]  # ... and says what is missing
    assert "not installed" in choose_backend("llamacpp", None, 0, ["f16"], False)[1]
    assert choose_backend("llamacpp", None, 0, ["f16"], True)[1] == "llama.cpp with the f16 GGUF file, as chosen in Settings"
    assert choose_backend("torch", None, 0, ["f16"], True)[0] == "torch"


def test_the_engine_process_answers_through_llama_cpp_with_the_demo_model(tmp_path):
    """End to end: the demo model converted to GGUF, the real spawned engine process, automatic choice
    (no CUDA here -> llama.cpp), a follow-up; the answers are the torch path's."""
    from engine.store.locations import demo_model_dir
    from engine.minigpt4.describer import Describer
    from engine.protocol import Describe, Finished, ImageInput, LoadModel, ModelReady
    from engine.worker import spawn_worker
    from tests.engine.test_worker import png

    folder = tmp_path / "demo"
    shutil.copytree(demo_model_dir(), folder)
    gguf_convert.convert(folder, "f32")
    settings = GenerationSettings.greedy(max_new_tokens=24)
    first = Describe(1, "c1", "What is in this picture?", (), ("img",), (ImageInput("img", png()),), settings)
    torch_describer = Describer(load_model(folder, device="cpu"))
    want1 = torch_describer.describe(first)[0].text
    history = (Turn("user", first.question, ("img",)), Turn("assistant", want1))
    follow = Describe(2, "c1", "What colour is it?", history, (), (), settings)
    want2 = torch_describer.describe(follow)[0].text
    handle = spawn_worker()
    try:
        ready = handle.request(LoadModel(str(folder), device="cpu"), 120)[-1]
        assert isinstance(ready, ModelReady) and "llama.cpp f32" in ready.summary, ready
        done = handle.request(first, 60)[-1]
        assert isinstance(done, Finished) and done.text == want1 and done.text
        done = handle.request(follow, 60)[-1]
        assert isinstance(done, Finished) and done.text == want2
    finally:
        handle.stop()


def test_lumen_models_gguf_converts_an_installed_model(tiny_model_dir, tmp_path, capsys):
    from engine.store.model_cli import main

    shutil.copytree(tiny_model_dir, tmp_path / "tiny")
    assert main(["--root", str(tmp_path), "gguf", "tiny", "q8_0"]) == 0
    out = capsys.readouterr().out
    assert "Memory for the language model at q8_0: about" in out and "llm-q8_0.gguf" in out
    assert gguf_convert.available(tmp_path / "tiny") == ["q8_0"]  # the transient f16 is gone
    assert main(["--root", str(tmp_path), "gguf", "absent", "q8_0"]) == 1


def test_the_thread_count_the_tuner_picks_never_changes_an_answer(case, expected, manifest):
    """engine.minigpt4.thread_tuner moves single-token steps between thread counts as the machine's load
    changes; here every step switches (1, 2, 1, ...), read back from llama.cpp itself, and turn 1 still
    gives the official greedy ids and its last logits exactly as with a fixed count."""
    from tests.engine.thread_switch import EveryStepSwitches

    key, loaded, _, template = case
    spec = manifest["cases"][key]["chat"]["turn1"]
    model, tok = loaded.model, loaded.tokenizer
    decoder = model.language_model

    prompt = build_prompt(template, [], spec["question"], 1)
    ids = [tok.encode(s, add_bos=i == 0) for i, s in enumerate(split_on_images(prompt, 1))]
    embeds = model.context_embeds(ids, [expected[f"{key}/chat/image_embeds"][0]])
    kept = decoder.tuner
    decoder.tuner = switching = EveryStepSwitches(lambda: decoder.lib.llama_n_threads(decoder._ctx))
    try:
        decoder.reset()
        reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(**GREEDY16))
    finally:
        decoder.tuner = kept
    assert list(reply.token_ids) == spec["greedy_ids"]
    assert len(switching.seen) == len(spec["greedy_ids"]) - 1  # every single-token step was timed
    assert switching.switched_every_step()


def test_the_decoder_tunes_every_usable_core_unless_a_count_is_given(case):
    from engine.minigpt4.describer import Describer
    from engine.minigpt4.llamacpp_backend import LlamaCppDecoder
    from engine.minigpt4.thread_tuner import usable_cores

    decoder = case[1].model.language_model
    assert decoder.tuner.most == usable_cores() == decoder.threads
    assert Describer(case[1]).threads is None  # llama.cpp tunes its own threads, torch's are left alone
    assert Describer(case[2]).threads.most == usable_cores()  # the torch path on the CPU: torch's threads
    fixed = LlamaCppDecoder(decoder.gguf_file, decoder.embed_tokens, n_ctx=64, threads=2)
    try:
        assert fixed.tuner.most == 1 and fixed.lib.llama_n_threads(fixed._ctx) == 2
    finally:
        fixed.close()
