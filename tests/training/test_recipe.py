"""The training loop on the tiny fixture model: what trains, exact resume, DDP on 2 CPU processes,
bad samples, feature caching, export into the engine's model directory."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.conftest import LAUNCH_ENV, ROOT, accelerate_launch, free_port
from training import config
from training.recipe import build_model, train
from training.synthetic import make_split


@pytest.fixture(scope="module")
def aligned(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("aligned")
    make_split(folder, 24, seed=3, size=56)
    return folder


def _cfg(model_dir: Path, aligned: Path, out: Path, **kw) -> config.TrainConfig:
    base = dict(model_dir=str(model_dir), aligned_dir=str(aligned), output_dir=str(out), batch_size=4,
                max_epoch=2, iters_per_epoch=3, warmup_steps=2, mixed_precision="no", num_workers=0, cpu=True,
                log_every=1, progress=False, tensorboard=False, train_crop="april")
    return config.stage2(**{**base, **kw})


def test_only_the_projection_trains_with_the_official_groups(tiny_model_dir, aligned, tmp_path) -> None:
    model, _, objective, names = build_model(_cfg(tiny_model_dir, aligned, tmp_path))
    assert names == ["language_projection.weight", "language_projection.bias"]
    assert model.training and not model.vision_model.training
    assert not model.qformer.training and not model.language_model.training
    from training.model import param_groups

    decay, no_decay = param_groups(model, 0.05)
    assert [p.shape for p in decay["params"]] == [model.language_projection.weight.shape]
    assert [p.shape for p in no_decay["params"]] == [model.language_projection.bias.shape]
    assert len(objective.instructions) == 4 and objective.end_sym == "###"


def test_training_changes_only_the_projection_and_exports_a_loadable_model(tiny_model_dir, aligned, tmp_path) -> None:
    result = train(_cfg(tiny_model_dir, aligned, tmp_path, max_steps=2))
    assert result.steps == 2 and result.exported is not None
    trained = load_file(str(result.checkpoint / "trainable.safetensors"))
    assert sorted(trained) == ["language_projection.bias", "language_projection.weight"]
    before = load_file(str(tiny_model_dir / "visual.safetensors"))
    after = load_file(str(result.exported / "visual.safetensors"))
    assert not torch.equal(before["language_projection.weight"], after["language_projection.weight"])
    assert torch.equal(after["language_projection.weight"], trained["language_projection.weight"])
    for key in before:
        if not key.startswith("language_projection."):
            assert torch.equal(before[key], after[key]), key
    from engine.minigpt4.loading import load_model

    loaded = load_model(result.exported, device="cpu", dtype="float32", check_memory_first=False)
    assert torch.equal(loaded.model.language_projection.weight.detach(), trained["language_projection.weight"])
    saved = json.loads((result.checkpoint / "config.json").read_text())
    assert saved["max_steps"] == 2 and saved["stage"] == "stage2"


@pytest.mark.system
def test_resume_mid_run_is_exact(tiny_model_dir, aligned, tmp_path) -> None:
    full = train(_cfg(tiny_model_dir, aligned, tmp_path / "full"))
    part = _cfg(tiny_model_dir, aligned, tmp_path / "part")
    train(dataclasses.replace(part, max_steps=4))  # stops after epoch 1 + 1 step; checkpoint at 4
    resumed = train(dataclasses.replace(part, resume=str(tmp_path / "part" / "checkpoint-000004")))
    assert resumed.steps == full.steps == 6
    a = load_file(str(full.checkpoint / "trainable.safetensors"))
    b = load_file(str(resumed.checkpoint / "trainable.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.weights_sha256 == full.weights_sha256
    # and the run really moved: a different seed ends elsewhere
    other = train(_cfg(tiny_model_dir, aligned, tmp_path / "other", seed=7))
    assert other.weights_sha256 != full.weights_sha256


def test_bad_samples_are_skipped_and_counted(tiny_model_dir, tmp_path) -> None:
    folder = tmp_path / "aligned"
    make_split(folder, 8, seed=1, size=56)
    (folder / "image" / "s00002.jpg").write_bytes(b"not a jpeg")
    data = json.loads((folder / "filter_cap.json").read_text())
    data["annotations"][5]["caption"] = "   "
    (folder / "filter_cap.json").write_text(json.dumps(data))
    from training.data import AlignedDataset, TrainTransform

    ds = AlignedDataset(folder, TrainTransform(56, (0.5,) * 3, (0.5,) * 3, "current"), seed=0)
    assert ds[(0, 2)]["skipped"] == 1 and ds[(0, 2)]["caption"] == data["annotations"][3]["caption"]
    assert ds[(0, 5)]["skipped"] == 1 and ds[(0, 1)]["skipped"] == 0
    result = train(_cfg(tiny_model_dir, folder, tmp_path / "run", batch_size=8, max_steps=2, max_epoch=1))
    assert result.steps == 2 and result.skipped_samples == 4  # 2 bad records x 2 full passes


@pytest.mark.system
def test_cached_features_give_the_same_loss(tiny_model_dir, aligned, tmp_path) -> None:
    from training.data import TrainTransform, decode_image, read_annotations
    from training.features import build_cache
    from training.model import load_for_training

    model, _ = load_for_training(tiny_model_dir)
    model.eval()
    pairs = [(decode_image((aligned / "image" / f"{r['image_id']}.jpg").read_bytes()), r["caption"])
             for r in read_annotations(aligned)]
    cache = build_cache(model, lambda start: ((i + 1, *p) for i, p in enumerate(pairs[start:], start)),
                        TrainTransform(56, model.config.image_mean, model.config.image_std, "current"),
                        tmp_path / "cache", dtype=torch.float32, shard_size=10)
    plain = train(_cfg(tiny_model_dir, aligned, tmp_path / "a", train_crop="current", max_steps=3))
    cached = train(_cfg(tiny_model_dir, aligned, tmp_path / "b", train_crop="current", max_steps=3,
                        feature_cache=str(cache)))
    assert cached.last_loss == pytest.approx(plain.last_loss, abs=1e-5)
    wa = load_file(str(plain.checkpoint / "trainable.safetensors"))
    wb = load_file(str(cached.checkpoint / "trainable.safetensors"))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


@pytest.mark.system
def test_two_cpu_processes_end_with_identical_weights(tiny_model_dir, aligned, tmp_path) -> None:
    cmd = accelerate_launch("--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                            "--main_process_port", str(free_port())) + ["stage2", "--cpu=true",
           f"--model_dir={tiny_model_dir}", f"--aligned_dir={aligned}", f"--output_dir={tmp_path}",
           "--batch_size=2", "--max_epoch=1", "--iters_per_epoch=3", "--warmup_steps=1", "--mixed_precision=no",
           "--num_workers=0", "--tensorboard=false", "--progress=false"]
    proc = subprocess.run(cmd, cwd=ROOT, env=LAUNCH_ENV, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = re.findall(r"rank (\d)/2 distributed=DistributedType.MULTI_CPU first-batch (\w+) final weights "
                       r"sha256 (\w+)", proc.stderr)
    assert sorted(r for r, _, _ in found) == ["0", "1"], proc.stderr[-3000:]
    (_, batch_a, w_a), (_, batch_b, w_b) = found
    assert batch_a != batch_b  # the ranks trained on different data ...
    assert w_a == w_b  # ... and still hold identical weights (gradients were all-reduced)
    state = json.loads((tmp_path / "checkpoint-000003" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 3


@pytest.mark.system
def test_bf16_and_gradient_accumulation_run(tiny_model_dir, aligned, tmp_path) -> None:
    result = train(_cfg(tiny_model_dir, aligned, tmp_path, mixed_precision="bf16", grad_accum=2, batch_size=2,
                        max_steps=2))
    assert result.steps == 2 and result.last_loss is not None and math.isfinite(result.last_loss)
    state = json.loads((result.checkpoint / "trainer_state.json").read_text())
    assert state["step"] == 2
    # the frozen LLM was loaded in bf16, the trained projection kept fp32 master weights
    trained = load_file(str(result.checkpoint / "trainable.safetensors"))
    assert trained["language_projection.weight"].dtype == torch.float32


def test_cache_and_prepare_commands(tiny_model_dir, aligned, tmp_path) -> None:
    from training.__main__ import main
    from training.features import FeatureCache

    out = tmp_path / "feats"
    assert main(["cache", "stage2", str(out), f"--model_dir={tiny_model_dir}", f"--aligned_dir={aligned}",
                 "--train_crop=april", "--views=2"]) == 0
    cache = FeatureCache(out, seed=0)
    assert len(cache) == 24 and cache.views == 2 and cache.shape == [24, 2, 8, 48]
    assert cache[(0, 3)]["caption"] == json.loads((aligned / "filter_cap.json").read_text())["annotations"][3]["caption"]
    assert main(["prepare", str(aligned / "filter_cap.json"), str(tmp_path / "shards"), "--image_size=32"]) == 0
    import tarfile

    with tarfile.open(next((tmp_path / "shards").glob("*.tar"))) as tar:
        assert len([n for n in tar.getnames() if n.endswith(".jpg")]) == 24


@pytest.mark.system
def test_stage1_from_two_shard_sources_with_mixing_and_resume(tiny_model_dir, aligned, tmp_path) -> None:
    from training.prepare import prepare_shards, shard_pattern

    prepare_shards(aligned / "filter_cap.json", tmp_path / "laion", image_size=56, samples_per_shard=10)
    prepare_shards(aligned / "filter_cap.json", tmp_path / "ccsbu", image_size=56, samples_per_shard=10)
    cfg = config.stage1(model_dir=str(tiny_model_dir), laion_shards=shard_pattern(tmp_path / "laion"),
                        ccsbu_shards=shard_pattern(tmp_path / "ccsbu"), output_dir=str(tmp_path / "run"),
                        batch_size=4, max_epoch=2, iters_per_epoch=2, warmup_steps=1, mixed_precision="no",
                        num_workers=0, cpu=True, log_every=1, progress=False, tensorboard=False, shuffle_buffer=8)
    first = train(dataclasses.replace(cfg, max_steps=2))
    assert first.steps == 2 and first.exported is not None
    resumed = train(dataclasses.replace(cfg, resume=str(first.checkpoint)))
    assert resumed.steps == 4 and resumed.weights_sha256 != first.weights_sha256


def test_stage2_starts_from_a_stage1_checkpoint(tiny_model_dir, aligned, tmp_path) -> None:
    """The official stage 2 is initialised from the stage-1 projection (``ckpt:`` in its config)."""
    from safetensors.torch import save_file

    proj = {"language_projection.weight": torch.full((64, 48), 0.5), "language_projection.bias": torch.ones(64)}
    (tmp_path / "stage1").mkdir()
    save_file(proj, str(tmp_path / "stage1" / "trainable.safetensors"))
    model, *_ = build_model(_cfg(tiny_model_dir, aligned, tmp_path, init_from=str(tmp_path / "stage1")))
    assert torch.equal(model.language_projection.weight.detach(), proj["language_projection.weight"])
    random_start, *_ = build_model(config.stage1(model_dir=str(tiny_model_dir), cpu=True))
    own = load_file(str(tiny_model_dir / "visual.safetensors"))["language_projection.weight"]
    assert not torch.equal(random_start.language_projection.weight.detach(), own)  # stage 1: fresh Linear
    with pytest.raises(ValueError, match="do not fit"):
        bad = {"language_projection.weight": torch.zeros(3, 3)}
        save_file(bad, str(tmp_path / "stage1" / "trainable.safetensors"))
        build_model(_cfg(tiny_model_dir, aligned, tmp_path, init_from=str(tmp_path / "stage1")))


@pytest.mark.parametrize(("precision", "expected"), [("no", torch.float32), ("bf16", torch.bfloat16)])
def test_projection_trains_in_the_run_precision_under_the_engines_fp16_autocast(
        tiny_model_dir, aligned, tmp_path, monkeypatch, precision, expected) -> None:
    """On a GPU the engine runs the image path under fp16 autocast (no GradScaler in a bf16/fp32 run);
    CPU autocast stands in for it here. The trained layer must leave it, the frozen parts stay in it."""
    from engine.minigpt4.modeling import MiniGPT4

    model, *_ = build_model(_cfg(tiny_model_dir, aligned, tmp_path, mixed_precision=precision))
    pixels = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        features = model.image_features(pixels)["image_embeds"].float()  # no autocast on the CPU: fp32
    monkeypatch.setattr(MiniGPT4, "_autocast", lambda self, device: torch.autocast("cpu", dtype=torch.float16))
    with model._autocast(pixels.device):  # a plain Linear would compute in fp16 here (the defect)
        x = torch.randn(2, model.language_projection.in_features)
        assert torch.nn.functional.linear(x, model.language_projection.weight).dtype == torch.float16
    seen = {}
    model.language_projection.register_forward_hook(lambda m, args, out: seen.update(y=out.dtype))
    out = model.image_features(pixels)["image_embeds"]
    assert seen["y"] == expected  # the projection computed in the run's precision
    out.float().sum().backward()
    assert model.language_projection.weight.grad.dtype == torch.float32  # fp32 master weights
    assert torch.allclose(out.float(), features, rtol=0.02, atol=0.02)


def test_the_documented_two_cache_stage1_command_runs(tiny_model_dir, aligned, tmp_path) -> None:
    """training/README.md: ``stage1 --feature_cache=laion_feats,ccsbu_feats`` (mixed by sample_ratios)."""
    from training.__main__ import main

    for name in ("laion", "ccsbu"):
        assert main(["cache", "stage2", str(tmp_path / f"{name}_feats"), f"--model_dir={tiny_model_dir}",
                     f"--aligned_dir={aligned}", "--train_crop=current"]) == 0
    caches = f"{tmp_path / 'laion_feats'},{tmp_path / 'ccsbu_feats'}"
    common = [f"--model_dir={tiny_model_dir}", "--cpu=true", "--batch_size=4", "--max_steps=2", "--warmup_steps=1",
              "--num_workers=0", "--mixed_precision=no", "--tensorboard=false", "--progress=false"]
    assert main(["stage1", f"--feature_cache={caches}", f"--output_dir={tmp_path / 'run'}", *common]) == 0
    assert (tmp_path / "run" / "checkpoint-000002" / "trainable.safetensors").is_file()
    missing = f"{tmp_path / 'laion_feats'},{tmp_path / 'nope'}"
    assert main(["stage1", f"--feature_cache={missing}", f"--output_dir={tmp_path / 'bad'}", *common]) == 2
