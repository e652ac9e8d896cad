"""The shipped demo model (resources/demo_model) gives real, deterministic answers through the
engine, and the demo pipeline (synthetic data -> stage 1 -> stage 2 -> eval -> export) runs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from training.synthetic import COLOURS, POSITIONS, SHAPES, Sample, draw, parse_attributes

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo_model"


def _answer(loaded, image, question: str) -> str:
    from engine.minigpt4.generation import generate_reply
    from engine.minigpt4.image_processing import preprocess
    from engine.minigpt4.prompts import build_prompt, get_template, split_on_images
    from engine.protocol import GenerationSettings

    model, tok, cfg = loaded.model, loaded.tokenizer, loaded.config
    template = get_template(cfg.template)
    before, after = split_on_images(build_prompt(template, (), question, 1), 1)
    with torch.inference_mode():
        emb = model.encode_image(preprocess([image], cfg.vision.image_size, cfg.image_mean, cfg.image_std))
        ctx = model.context_embeds([tok.encode(before, add_bos=True), tok.encode(after)], [emb[0]])
        return generate_reply(model, tok, ctx, GenerationSettings.greedy(max_new_tokens=24),
                              stop_string=template.stop_string).text


def test_demo_model_is_small_labelled_and_loadable() -> None:
    meta = json.loads((DEMO / "lumen_model.json").read_text())
    assert meta["demo"] is True and "DEMO MODEL" in meta["notes"]
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size < 20 * 2**20
    assert "NOT a real MiniGPT-4" in (DEMO / "README.md").read_text()


@pytest.mark.system
def test_demo_model_describes_unseen_images_correctly_and_deterministically() -> None:
    from engine.minigpt4.loading import load_model

    loaded = load_model(DEMO, device="cpu", dtype="float32", check_memory_first=False)
    rng = random.Random(12345)  # images the model never saw (different seed from training and eval)
    samples = [Sample(f"x{i}", rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.choice(list(POSITIONS)))
               for i in range(16)]
    correct = 0
    for s in samples:
        image = draw(s, 112, rng)
        answer = _answer(loaded, image, "Describe this image briefly, in one or two sentences.")
        got = parse_attributes(answer)
        correct += got == {"colour": s.colour, "shape": s.shape, "position": s.position}
    assert correct >= 12, f"only {correct}/16 fully correct"
    image = draw(samples[0], 112, random.Random(0))
    first = _answer(loaded, image, "What is in this picture?")
    assert first == _answer(loaded, image, "What is in this picture?") and first.endswith(".")


@pytest.mark.system
def test_demo_pipeline_runs_end_to_end(tmp_path) -> None:
    from training.demo import build_demo

    summary = build_demo(tmp_path / "model", tmp_path / "work", stage1_steps=6, stage2_steps=4, train_size=64,
                         test_size=6, batch_size=8)
    assert summary["stage1_steps"] == 6 and summary["stage2_steps"] == 4
    assert set(summary["accuracy"]) == {"Describe this image briefly, in one or two sentences.",
                                        "What can you see here?"}
    for name in ("lumen_model.json", "visual.safetensors", "llm", "tokenizer.model", "README.md", "demo_metrics.json"):
        assert (tmp_path / "model" / name).exists(), name
    assert list((tmp_path / "work" / "shards").glob("*.tar"))  # stage 1 really ran on webdataset shards
    # rebuilding gives the same files (tokenizer, weights, metrics)
    build_demo(tmp_path / "again", tmp_path / "work2", stage1_steps=6, stage2_steps=4, train_size=64, test_size=6,
               batch_size=8)
    for name in ("tokenizer.model", "visual.safetensors", "llm/model.safetensors"):
        assert (tmp_path / "model" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
