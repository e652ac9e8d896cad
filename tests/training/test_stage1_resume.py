"""Stage 1 from webdataset shards resumes exactly: two sources mixed 2:1, several shards each, bad
samples and a truncated shard, 2 DataLoader workers per source, gradient accumulation, random crops.
An interrupted + resumed run consumes the same batches (sample keys) and ends with bit-identical
projection weights; a checkpoint stripped of its stream state does not (so the test can fail)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.conftest import LAUNCH_ENV, ROOT, accelerate_launch, free_port
from training import config, recipe


def _cfg(model_dir: Path, shards: dict[str, str], out: Path, **kw) -> config.TrainConfig:
    base = dict(model_dir=str(model_dir), laion_shards=shards["laion"], ccsbu_shards=shards["ccsbu"],
                sample_ratios=(2, 1), output_dir=str(out), batch_size=3, grad_accum=2, max_epoch=2,
                iters_per_epoch=3, warmup_steps=1, mixed_precision="no", num_workers=2, shuffle_buffer=4,
                train_crop="april", cpu=True, log_every=1, progress=False, tensorboard=False)
    return config.stage1(**{**base, **kw})


class _Recorder:
    """Wraps a run's batch stream and records the sample keys of every batch the trainer takes."""

    def __init__(self, inner, keys: list):
        self.inner, self.keys = inner, keys

    def __next__(self):
        batch = next(self.inner)
        self.keys.append(batch.keys)
        return batch

    def state(self):
        return self.inner.state()


def _train(cfg: config.TrainConfig):
    """``recipe.train`` -> (result, keys of the batches it consumed, in order)."""
    keys: list = []
    real = recipe.build_batches
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(recipe, "build_batches", lambda *a, **k: _Recorder(real(*a, **k), keys))
        return recipe.train(cfg), keys


def _weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / f"checkpoint-{step:06d}" / "trainable.safetensors"))


@pytest.fixture(scope="module")
def runs(tiny_model_dir, stage1_shards, tmp_path_factory):
    """An uninterrupted 6-step run and one stopped after step 4 (checkpoints at 3 and 4)."""
    tmp = tmp_path_factory.mktemp("stage1_resume")
    full, full_keys = _train(_cfg(tiny_model_dir, stage1_shards, tmp / "full"))
    part, part_keys = _train(_cfg(tiny_model_dir, stage1_shards, tmp / "part", max_steps=4))
    assert full.steps == 6 and part.steps == 4 and len(full_keys) == 12 and part_keys == full_keys[:8]
    return {"tmp": tmp, "full": full, "keys": full_keys}


def test_interrupted_and_resumed_stage1_run_is_bit_identical(runs, tiny_model_dir, stage1_shards) -> None:
    tmp, full, keys = runs["tmp"], runs["full"], runs["keys"]
    assert {k.split("-")[0] for batch in keys for k in batch} == {"laion", "ccsbu"}  # both sources mixed in
    assert full.skipped_samples > 0  # bad samples were met (and counted) along the way
    # resume after step 4 with the same 2 workers, and after step 3 (the epoch-end checkpoint) in-process
    for step, workers in ((4, 2), (3, 0)):
        cfg = _cfg(tiny_model_dir, stage1_shards, tmp / f"resumed{step}", num_workers=workers,
                   resume=str(tmp / "part" / f"checkpoint-{step:06d}"))
        resumed, resumed_keys = _train(cfg)
        assert resumed.steps == 6 and resumed_keys == keys[2 * step:]  # the same samples, same order
        assert resumed.weights_sha256 == full.weights_sha256
        a, b = _weights(tmp / "full", 6), _weights(tmp / f"resumed{step}", 6)
        assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
        assert resumed.skipped_samples == full.skipped_samples  # bad-sample count continues exactly
        state = json.loads((tmp / f"resumed{step}" / "checkpoint-000006" / "data_state_0.json").read_text())
        assert state == json.loads((tmp / "full" / "checkpoint-000006" / "data_state_0.json").read_text())


def test_resuming_without_the_stream_state_sees_other_samples(runs, tiny_model_dir, stage1_shards, caplog) -> None:
    tmp, full, keys = runs["tmp"], runs["full"], runs["keys"]
    stripped = tmp / "stripped"
    shutil.copytree(tmp / "part" / "checkpoint-000004", stripped)
    (stripped / "data_state_0.json").unlink()
    with caplog.at_level(logging.WARNING, logger="training.shards"):
        resumed, resumed_keys = _train(_cfg(tiny_model_dir, stage1_shards, tmp / "fresh", resume=str(stripped)))
    assert "fresh shard streams" in caplog.text
    assert resumed.steps == 6 and len(resumed_keys) == 4 and resumed_keys != keys[8:]
    assert resumed.weights_sha256 != full.weights_sha256


def _launch(args: list[str], port: int) -> str:
    cmd = accelerate_launch("--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                            "--main_process_port", str(port)) + ["stage1", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=LAUNCH_ENV, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = dict(re.findall(r"rank (\d)/2 distributed=DistributedType.MULTI_CPU first-batch \w+ final weights "
                            r"sha256 (\w+)", proc.stderr))
    assert sorted(found) == ["0", "1"], proc.stderr[-3000:]
    return found["0"] if found["0"] == found["1"] else pytest.fail(f"ranks disagree: {found}")


@pytest.mark.system
def test_two_process_stage1_resume_is_exact_on_every_rank(tiny_model_dir, stage1_shards, tmp_path) -> None:
    full = _launch([f"--model_dir={tiny_model_dir}", f"--laion_shards={stage1_shards['laion']}",
                    f"--ccsbu_shards={stage1_shards['ccsbu']}", "--sample_ratios=2,1", f"--output_dir={tmp_path / 'a'}",
                    "--cpu=true", "--batch_size=3", "--max_epoch=1", "--iters_per_epoch=4", "--save_every=2",
                    "--warmup_steps=1", "--mixed_precision=no", "--num_workers=2", "--shuffle_buffer=4",
                    "--tensorboard=false", "--progress=false"], free_port())
    resumed = _launch([f"--resume={tmp_path / 'a' / 'checkpoint-000002'}", f"--output_dir={tmp_path / 'b'}",
                       "--tensorboard=false", "--progress=false"], free_port())
    assert resumed == full
    states = {}
    for rank in (0, 1):  # each rank's streams stand exactly where the uninterrupted run's do
        a, b = (json.loads((tmp_path / run / "checkpoint-000004" / f"data_state_{rank}.json").read_text())
                for run in ("a", "b"))
        assert a == b and a["world"] == 2 and a["rank"] == rank
        states[rank] = a["sources"]
    assert states[0] != states[1]
    assert torch.equal(_weights(tmp_path / "a", 4)["language_projection.weight"],
                       _weights(tmp_path / "b", 4)["language_projection.weight"])
