"""Loss, inputs and label masks for the fixture batches equal what the official forward() produced.

The batches are rebuilt from the manifest's answers and instructions with training.objective on the
model converted from the official tiny checkpoints; nothing is copied from the expected tensors.
"""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from engine.minigpt4.image_processing import preprocess
from training.data import clean_caption
from training.model import load_for_training
from training.objective import IGNORE_INDEX, Objective, forward_loss, stage2_instructions

CASES = [("main", "train_stage1"), ("main", "train_stage2"), ("main", "train_mixed_prompts"),
         ("noqformer", "train_stage2")]


@pytest.mark.parametrize("case,kind", CASES)
def test_fixture_batch_matches_official(case, kind, manifest, expected, reference_dir, tiny_model_dir,
                                        tiny_noqformer_model_dir) -> None:
    spec = manifest["cases"][case][kind]
    model, tok = load_for_training(tiny_model_dir if case == "main" else tiny_noqformer_model_dir)
    assert tok.pad_id == spec["pad_token_id"]
    images = [Image.open(reference_dir / "images" / name) for name in spec["images"]]
    with torch.no_grad():
        image_embeds = model.encode_image(preprocess(images, model.config.vision.image_size))
        objective = Objective(tok, spec["end_sym"], spec["max_txt_len"])
        instruction = spec["instruction"] or spec["instruction_input"]
        inputs = objective.build(model, image_embeds, spec["answers"], instruction)
        loss = forward_loss(model, inputs)
        per_sample = forward_loss(model, inputs, reduction="none")
    key = f"{case}/train/{kind.removeprefix('train_')}"
    torch.testing.assert_close(inputs.inputs_embeds, expected[f"{key}/inputs_embeds"], atol=1e-4, rtol=1e-4)
    assert torch.equal(inputs.attention_mask, expected[f"{key}/attention_mask"])
    assert torch.equal(inputs.labels, expected[f"{key}/labels"])
    assert inputs.labels.tolist() == spec["labels_list"]
    assert loss.item() == pytest.approx(expected[f"{key}/loss"].item(), abs=1e-4)
    assert per_sample.tolist() == pytest.approx(spec["loss_per_sample_reduction_none"], abs=1e-4)


def test_targets_truncate_and_lose_the_end_symbol(manifest, tiny_model_dir) -> None:
    spec = manifest["cases"]["main"]["train_stage1"]
    _, tok = load_for_training(tiny_model_dir)
    ids, atts = Objective(tok, "\n", 32).target_ids(spec["answers"])
    assert ids.shape == (2, 32)
    assert ids[1].tolist() == spec["answer_token_ids"][1][:32]  # the long caption's "\n" is cut off
    short = spec["answer_token_ids"][0]
    assert ids[0, : len(short)].tolist() == short and set(ids[0, len(short):].tolist()) == {tok.pad_id}
    assert atts.sum(1).tolist() == [len(short), 32]


def test_supervised_positions_are_exactly_the_real_target_tokens(manifest, tiny_model_dir) -> None:
    model, tok = load_for_training(tiny_model_dir)
    obj = Objective(tok, "###", 160, stage2_instructions("vicuna0"))
    with torch.no_grad():
        inputs = obj.build(model, torch.zeros(2, 8, 64), ["a cat", "two red dogs run"], obj.instructions[0])
    for row, answer in zip(inputs.labels, ["a cat", "two red dogs run"]):
        assert [t for t in row.tolist() if t != IGNORE_INDEX] == tok.encode(answer + "###")
    assert inputs.labels[:, :1].eq(IGNORE_INDEX).all()


def test_stage2_prompt_list_and_per_batch_choice(manifest) -> None:
    want = manifest["cases"]["main"]["model_info"]["prompt_list_after_template"]
    assert list(stage2_instructions("vicuna0")) == want
    llama = stage2_instructions("llama2")
    assert llama[1] == manifest["cases"]["noqformer"]["train_stage2"]["instruction"]
    obj = Objective(None, "###", 160, want)
    picks = {obj.choose_instruction(random.Random(s)) for s in range(50)}
    assert picks == set(want)
    assert Objective(None, "\n", 32).choose_instruction(random.Random(0)) is None


def test_caption_processor_examples(manifest) -> None:
    for ex in manifest["cases"]["main"]["caption_processor_examples"]:
        assert clean_caption(ex["raw"]) == ex["processed"]
    spec = manifest["cases"]["main"]["train_stage1"]
    assert [clean_caption(c) for c in spec["raw_captions"]] == spec["answers"]
