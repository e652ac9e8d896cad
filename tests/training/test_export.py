"""Checkpoints interoperate with the official ones: an official ``pretrained_minigpt4*.pth`` starts a run,
any checkpoint exports to an engine model folder (frozen dtypes kept, provenance recorded) and to the
official ``{'model': {'llama_proj.*'}}`` file that the official loader (and our converter) reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from training import config
from training.__main__ import main
from training.recipe import build_model, train
from training.synthetic import make_split


@pytest.fixture(scope="module")
def fp16_base(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model folder with its frozen visual tensors stored in float16 (as a 13B folder may be)."""
    base = tmp_path_factory.mktemp("fp16") / "model"
    shutil.copytree(tiny_model_dir, base)
    visual = load_file(str(base / "visual.safetensors"))
    save_file({k: v if k.startswith("language_projection.") else v.half() for k, v in visual.items()},
              str(base / "visual.safetensors"))
    return base


@pytest.fixture(scope="module")
def run(fp16_base, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    make_split(tmp / "aligned", 8, seed=2, size=56)
    cfg = config.stage2(model_dir=str(fp16_base), aligned_dir=str(tmp / "aligned"), output_dir=str(tmp / "run"),
                        batch_size=4, max_epoch=1, iters_per_epoch=2, save_every=1, warmup_steps=1,
                        mixed_precision="no", num_workers=0, cpu=True, progress=False, tensorboard=False)
    assert train(cfg).steps == 2
    return tmp / "run"


def test_an_official_projection_checkpoint_starts_a_run(reference_dir, tiny_model_dir, tmp_path) -> None:
    official = reference_dir / "checkpoints" / "pretrained_minigpt4_tiny.pth"
    proj = torch.load(official, weights_only=True)["model"]
    model, *_ = build_model(config.stage2(model_dir=str(tiny_model_dir), init_from=str(official), cpu=True))
    assert torch.equal(model.language_projection.weight.detach(), proj["llama_proj.weight"].float())
    assert torch.equal(model.language_projection.bias.detach(), proj["llama_proj.bias"].float())
    torch.save({"model": {"something.else": torch.zeros(2)}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no llama_proj"):
        build_model(config.stage2(model_dir=str(tiny_model_dir), init_from=str(tmp_path / "other.pth"), cpu=True))


def test_any_checkpoint_exports_to_an_engine_model_folder(run, fp16_base, tmp_path) -> None:
    from engine.minigpt4.loading import load_model

    ckpt = run / "checkpoint-000001"  # an intermediate one
    assert main(["export", str(ckpt), str(tmp_path / "model")]) == 0
    trained = load_file(str(ckpt / "trainable.safetensors"))
    base, out = (load_file(str(d / "visual.safetensors")) for d in (fp16_base, tmp_path / "model"))
    assert sorted(base) == sorted(out)
    for key, tensor in base.items():
        if key in trained:
            assert torch.equal(out[key], trained[key]) and out[key].dtype == torch.float32
        else:  # frozen: the base's bytes and dtype
            assert out[key].dtype == tensor.dtype == torch.float16 and torch.equal(out[key], tensor), key
    meta = json.loads((tmp_path / "model" / "lumen_model.json").read_text())
    source = meta["sources"]["training"]
    assert source["step"] == 1 and source["stage"] == "stage2" and source["checkpoint"] == str(ckpt.resolve())
    assert source["config"]["batch_size"] == 4 and "projection" in meta["sources"]  # the base's sources kept
    loaded = load_model(tmp_path / "model", device="cpu", dtype="float32", check_memory_first=False)
    assert torch.equal(loaded.model.language_projection.weight.detach(), trained["language_projection.weight"])
    assert (run / "model" / "lumen_model.json").is_file()  # the run's own export at the end
    assert json.loads((run / "model" / "lumen_model.json").read_text())["sources"]["training"]["step"] == 2


def test_official_format_export_round_trips(run, reference_dir, tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "pretrained_minigpt4_ours.pth"
    assert main(["export", str(run / "checkpoint-000002"), str(out), "--format=official"]) == 0
    data = torch.load(out, weights_only=True)
    assert list(data) == ["model"] and sorted(data["model"]) == ["llama_proj.bias", "llama_proj.weight"]
    trained = load_file(str(run / "checkpoint-000002" / "trainable.safetensors"))
    assert torch.equal(data["model"]["llama_proj.weight"], trained["language_projection.weight"])
    from engine.minigpt4.converter import convert_official
    from engine.minigpt4.config import tiny

    ck = reference_dir / "checkpoints"  # the engine's converter of official files takes it as the projection
    convert_official(tmp_path / "converted", config=tiny(qformer=True), eva_vit=ck / "eva_vit_g.pth",
                     llm_dir=ck / "vicuna-tiny", projection=out, blip2=ck / "blip2_pretrained_flant5xxl.pth")
    converted = load_file(str(tmp_path / "converted" / "visual.safetensors"))
    assert torch.equal(converted["language_projection.bias"], trained["language_projection.bias"])


def test_export_of_something_else_is_a_plain_error(tmp_path) -> None:
    assert main(["export", str(tmp_path), str(tmp_path / "out")]) == 2
