"""Distributed launch on CPU (gloo): two accelerate "machines" on 127.0.0.1 train exactly as one machine
with two processes; node-local output folders, a silent single process, a changed world size, a second
run into the same folder and an orphaned rank are all refused or ended, with a plain message."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training import config, recipe
from training.config import ConfigError
from training.recipe import train
from training.synthetic import make_split

from tests.training.conftest import LAUNCH_ENV, ROOT, accelerate_launch, free_port


def _stage1_args(model_dir: Path, shards: dict[str, str], out: Path) -> list[str]:
    return ["stage1", f"--model_dir={model_dir}", f"--laion_shards={shards['laion']}",
            f"--ccsbu_shards={shards['ccsbu']}", "--sample_ratios=1,1", f"--output_dir={out}", "--cpu=true",
            "--batch_size=2", "--max_epoch=1", "--iters_per_epoch=3", "--warmup_steps=1", "--mixed_precision=no",
            "--num_workers=0", "--shuffle_buffer=4", "--log_every=1", "--tensorboard=false", "--progress=false"]


def _machines(args_per_machine: list[list[str]], port: int) -> list[subprocess.CompletedProcess]:
    """One ``accelerate launch`` per machine rank (one process each), all on 127.0.0.1."""
    procs = [subprocess.Popen(accelerate_launch("--multi_gpu", "--num_machines", "2", "--num_processes", "2",
                                        "--machine_rank", str(k), "--main_process_ip", "127.0.0.1",
                                        "--main_process_port", str(port)) + args,
                              cwd=ROOT, env=LAUNCH_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, args in enumerate(args_per_machine)]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def _losses(stderr: str) -> dict[int, str]:
    return {int(s): loss for s, loss in re.findall(r"step (\d+)/\d+ loss=(\S+)", stderr)}


def _digests(stderr: str) -> dict[str, str]:
    return dict(re.findall(r"rank (\d)/2 distributed=DistributedType.MULTI_CPU first-batch \w+ final weights "
                           r"sha256 (\w+)", stderr))


@pytest.mark.system
def test_two_machines_on_localhost_train_as_one_machine_with_two_processes(tiny_model_dir, stage1_shards,
                                                                           tmp_path) -> None:
    one = subprocess.run(accelerate_launch("--multi_gpu", "--num_machines", "1", "--num_processes", "2",
                                   "--main_process_port", str(free_port()))
                         + _stage1_args(tiny_model_dir, stage1_shards, tmp_path / "one"),
                         cwd=ROOT, env=LAUNCH_ENV, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    args = _stage1_args(tiny_model_dir, stage1_shards, tmp_path / "two")
    m0, m1 = _machines([args, args], free_port())
    assert m0.returncode == 0 and m1.returncode == 0, (m0.stderr + m1.stderr)[-4000:]
    assert sorted(_losses(m0.stderr)) == [1, 2, 3] and _losses(m0.stderr) == _losses(one.stderr)
    assert _digests(m0.stderr)["0"] == _digests(m1.stderr)["1"] == _digests(one.stderr)["0"]
    a, b = (load_file(str(tmp_path / run / "checkpoint-000003" / "trainable.safetensors")) for run in ("one", "two"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    for run in ("one", "two"):  # each rank's shard streams were saved into the one shared folder
        assert {json.loads((tmp_path / run / "checkpoint-000003" / f"data_state_{r}.json").read_text())["rank"]
                for r in (0, 1)} == {0, 1}


@pytest.mark.system
def test_node_local_output_folders_are_refused_at_start(tiny_model_dir, stage1_shards, tmp_path) -> None:
    m0, m1 = _machines([_stage1_args(tiny_model_dir, stage1_shards, tmp_path / "node0"),
                        _stage1_args(tiny_model_dir, stage1_shards, tmp_path / "node1")], free_port())
    assert m0.returncode != 0 and m1.returncode != 0, (m0.stderr + m1.stderr)[-4000:]
    for m in (m0, m1):
        assert "do not see the main rank's output_dir" in m.stderr and "shared filesystem" in m.stderr
    assert not list(tmp_path.glob("node*/checkpoint-*"))  # refused before the first step


@pytest.mark.system
def test_num_processes_without_multi_gpu_is_refused(tiny_model_dir, tmp_path) -> None:
    make_split(tmp_path / "aligned", 8, seed=1, size=56)
    proc = subprocess.run(accelerate_launch("--num_processes", "2") + [
        "stage2", "--cpu=true", f"--model_dir={tiny_model_dir}", f"--aligned_dir={tmp_path / 'aligned'}",
        f"--output_dir={tmp_path / 'run'}", "--tensorboard=false", "--progress=false"],
        cwd=ROOT, env=LAUNCH_ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stderr[-3000:]  # the rank exits with 2, the launcher with 1
    assert "asked for 2 processes but started 1" in proc.stderr and "--multi_gpu" in proc.stderr


@pytest.fixture(scope="module")
def aligned(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("aligned")
    make_split(folder, 8, seed=3, size=56)
    return folder


def _cfg(model_dir: Path, aligned: Path, out: Path, **kw) -> config.TrainConfig:
    base = dict(model_dir=str(model_dir), aligned_dir=str(aligned), output_dir=str(out), batch_size=4,
                max_epoch=1, iters_per_epoch=2, warmup_steps=1, mixed_precision="no", num_workers=0, cpu=True,
                log_every=1, progress=False, tensorboard=False)
    return config.stage2(**{**base, **kw})


def test_resume_with_another_world_size_is_refused(tiny_model_dir, aligned, tmp_path) -> None:
    first = train(_cfg(tiny_model_dir, aligned, tmp_path / "a", max_steps=1))
    state = first.checkpoint / "trainer_state.json"  # as a 2-process run writes it
    state.write_text(json.dumps({**json.loads(state.read_text()), "world_size": 2}))
    with pytest.raises(ConfigError, match=r"trained by 2 process\(es\) \(global batch 8\); this run has 1"):
        train(_cfg(tiny_model_dir, aligned, tmp_path / "b", resume=str(first.checkpoint)))
    assert not (tmp_path / "b").exists()


def test_a_second_run_into_the_same_folder_is_refused(tiny_model_dir, aligned, tmp_path) -> None:
    cfg = _cfg(tiny_model_dir, aligned, tmp_path / "run", max_steps=1)
    (tmp_path / "run").mkdir()
    with open(tmp_path / "run" / ".lock", "a+") as other:  # what a running trainer holds
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConfigError, match="in use by another training run"):
            train(cfg)
    with pytest.MonkeyPatch.context() as mp, pytest.raises(RuntimeError, match="failed") as failed:
        mp.setattr(recipe, "build_model", lambda cfg: (_ for _ in ()).throw(RuntimeError("failed")))
        train(cfg)  # a run that fails; its traceback (and frames) are still held below
    assert train(cfg).steps == 1 and failed.traceback  # the failed run freed the folder: the next one goes ahead
    assert train(dataclasses.replace(cfg, max_steps=2, resume=str(tmp_path / "run" / "checkpoint-000001"))).steps == 2


@pytest.mark.system
def test_ranks_exit_when_the_launcher_dies(tiny_model_dir, aligned, tmp_path) -> None:
    import psutil

    log = tmp_path / "launch.log"
    cmd = accelerate_launch("--multi_gpu", "--num_machines", "1", "--num_processes", "2", "--main_process_port",
                    str(free_port())) + [
        "stage2", "--cpu=true", f"--model_dir={tiny_model_dir}", f"--aligned_dir={aligned}",
        f"--output_dir={tmp_path / 'run'}", "--batch_size=2", "--max_epoch=1", "--iters_per_epoch=100000",
        "--warmup_steps=1", "--num_workers=0", "--log_every=1", "--tensorboard=false", "--progress=false"]
    with open(log, "w") as fh:
        launcher = subprocess.Popen(cmd, cwd=ROOT, env=LAUNCH_ENV, stdout=fh, stderr=fh, start_new_session=True)
    ranks: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        while "step 2/" not in log.read_text():  # both ranks are training
            assert launcher.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        ranks = [p for p in psutil.Process(launcher.pid).children(recursive=True) if "training" in " ".join(p.cmdline())]
        assert len(ranks) == 2
        os.killpg(launcher.pid, signal.SIGKILL)  # the launcher's process group (the ranks have their own)
        launcher.wait()
        gone, alive = psutil.wait_procs(ranks, timeout=20)
        assert not alive, f"ranks still training after the launcher died: {alive}"
        assert "the launcher (pid" in log.read_text()
    finally:
        for p in ranks:
            if p.is_running():
                p.kill()
