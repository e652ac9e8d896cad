"""Conversion of official files: works for any tiny config, and every wrong input is a clear error."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.minigpt4.converter import CheckpointError, convert_official, load_state_dict
from engine.minigpt4.config import QFormerConfig, VisionConfig, tiny
from engine.minigpt4.image_processing import preprocess
from engine.minigpt4.loading import ModelLoadError, load_model
from engine.minigpt4.modeling import MiniGPT4
from tests.engine.official_format import write_official_files

CKPT = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "reference" / "checkpoints"


def other_tiny(qformer: bool):
    """A configuration unlike the fixtures': other widths, depths, image size, query count."""
    base = tiny(qformer=qformer)
    llm = {**base.llm, "hidden_size": 32, "intermediate_size": 86, "num_attention_heads": 2,
           "num_key_value_heads": 2, "num_hidden_layers": 3}
    return replace(base, vision=VisionConfig(image_size=28, patch_size=7, hidden_size=40, num_layers=3, num_heads=5,
                                             intermediate_size=174),
                   qformer=QFormerConfig(hidden_size=24, num_layers=2, num_heads=3, intermediate_size=48,
                                         num_query_tokens=5, max_position_embeddings=64) if qformer else None,
                   llm=llm)


def tokenizer_into(llm_dir: Path) -> None:
    shutil.copyfile(CKPT / "vicuna-tiny" / "tokenizer.model", llm_dir / "tokenizer.model")


@pytest.mark.parametrize("qformer", [True, False])
def test_any_tiny_config_round_trips_through_the_official_formats(tmp_path, qformer):
    torch.manual_seed(0)
    config = other_tiny(qformer)
    model = MiniGPT4(config).eval()
    with torch.no_grad():  # non-trivial LayerNorm weights, so ln_vision mistakes show
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.add_(torch.randn_like(p) * 0.2)
        if not qformer:  # the Llama-2 flavour's ln_vision is never loaded: identity affine
            model.vision_model.post_layernorm.reset_parameters()
    paths = write_official_files(model, tmp_path / "official")
    tokenizer_into(paths["llm_dir"])
    convert_official(tmp_path / "model", config=config, eva_vit=paths["eva_vit"], blip2=paths.get("blip2"),
                     projection=paths["projection"], llm_dir=paths["llm_dir"])
    loaded = load_model(tmp_path / "model", device="cpu")
    pixels = preprocess([Image.effect_noise((50, 40), 60).convert("RGB")], size=28)
    model.vision_model.half().float()  # the EVA file is fp16, as released
    with torch.no_grad():
        want = model.image_features(pixels)
        got = loaded.model.image_features(pixels)
        for key in want:
            torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=1e-4)
        ids = torch.tensor([[1, 5, 9, 33]])
        torch.testing.assert_close(loaded.model.language_model(ids).logits, model.language_model(ids).logits,
                                   atol=1e-2, rtol=1e-2)  # the LLM folder is stored in its own dtype


def fixture_args(**overrides):
    args = dict(config=tiny(), eva_vit=CKPT / "eva_vit_g.pth", blip2=CKPT / "blip2_pretrained_flant5xxl.pth",
                projection=CKPT / "pretrained_minigpt4_tiny.pth", llm_dir=CKPT / "vicuna-tiny")
    args.update(overrides)
    return args


def test_extra_eva_block_is_dropped_and_reported(tmp_path):
    report = convert_official(tmp_path / "m", **fixture_args())
    assert any("blocks >= 2" in note for note in report.notes)
    assert "Qformer.bert.embeddings.position_ids" in report.dropped[str(CKPT / "blip2_pretrained_flant5xxl.pth")]


def test_missing_file_names_it(tmp_path):
    with pytest.raises(CheckpointError) as err:
        convert_official(tmp_path / "m", **fixture_args(eva_vit=tmp_path / "eva_vit_g.pth"))
    assert err.value.file.endswith("eva_vit_g.pth") and "not found" in err.value.problem


def test_wrong_shapes_are_refused(tmp_path):
    with pytest.raises(CheckpointError) as err:  # the Llama-2 projection in the Q-Former model
        convert_official(tmp_path / "m", **fixture_args(projection=CKPT / "pretrained_minigpt4_llama2_tiny.pth"))
    assert "wrong shape" in err.value.problem and "llama2" in err.value.file


def test_wrong_key_set_is_refused(tmp_path):
    with pytest.raises(CheckpointError) as err:  # files swapped
        convert_official(tmp_path / "m", **fixture_args(blip2=CKPT / "pretrained_minigpt4_tiny.pth"))
    assert "right file" in err.value.problem
    partial = load_state_dict(CKPT / "blip2_pretrained_flant5xxl.pth")
    partial = {k: v for k, v in partial.items() if "layer.3." not in k}
    torch.save({"model": partial}, tmp_path / "blip2.pth")
    with pytest.raises(CheckpointError) as err:
        convert_official(tmp_path / "m", **fixture_args(blip2=tmp_path / "blip2.pth"))
    assert "missing" in err.value.problem
    assert not (tmp_path / "m").exists()


class Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/lumen-pickle-payload-ran",))


def test_pickle_with_a_payload_is_never_executed(tmp_path):
    marker = Path("/tmp/lumen-pickle-payload-ran")
    marker.unlink(missing_ok=True)
    torch.save({"model": {"llama_proj.weight": Payload()}}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError) as err:
        convert_official(tmp_path / "m", **fixture_args(projection=tmp_path / "evil.pth"))
    assert "refused" in err.value.problem
    assert not marker.exists()


def test_garbage_and_not_a_llama_folder(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError):
        convert_official(tmp_path / "m", **fixture_args(eva_vit=tmp_path / "junk.pth"))
    with pytest.raises(CheckpointError) as err:
        convert_official(tmp_path / "m", **fixture_args(llm_dir=tmp_path))
    assert "config.json" in err.value.problem


def test_hf_blip2_weights_can_replace_the_lavis_files(tmp_path):
    from safetensors.torch import load_file, save_file

    convert_official(tmp_path / "a", **fixture_args())
    visual = load_file(str(tmp_path / "a" / "visual.safetensors"))
    hf = {k: v for k, v in visual.items() if not k.startswith("language_projection")}
    hf["language_model.lm_head.weight"] = torch.zeros(2, 2)  # the T5 of blip2-flan-t5-xxl, ignored
    save_file(hf, str(tmp_path / "blip2-hf.safetensors"))
    convert_official(tmp_path / "b", **fixture_args(eva_vit=None, blip2=None, blip2_hf=tmp_path / "blip2-hf.safetensors"))
    again = load_file(str(tmp_path / "b" / "visual.safetensors"))
    assert again.keys() == visual.keys()
    for key in visual:
        torch.testing.assert_close(again[key], visual[key])


def test_damaged_model_folder_is_a_typed_load_error(tmp_path):
    from engine.protocol import ErrorKind

    convert_official(tmp_path / "m", **fixture_args())
    (tmp_path / "m" / "visual.safetensors").write_bytes(b"broken")
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path / "m", device="cpu")
    assert err.value.kind is ErrorKind.MODEL_MISMATCH
    shutil.rmtree(tmp_path / "m" / "llm")
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path / "m", device="cpu")
    assert err.value.kind is ErrorKind.MODEL_MISSING
