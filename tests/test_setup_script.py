"""scripts/setup.sh: a set-up environment starts without re-running pip (or apt) each time."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../calls.log"
[[ -n "${FAIL_WHEEL:-}" && "$*" == *"pip wheel"* ]] && exit 1
exit 0
"""


def _project(tmp_path: Path) -> Path:
    """A copy of the script and pyproject.toml with a .venv whose python only records how it is called."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def _setup(project: Path, *args: str, path: str = "/usr/bin:/bin", check: bool = True,
           **extra_env: str) -> tuple[float, list[str]]:
    log = project / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LUMEN_TORCH"}
    env["PATH"] = path  # no apt-get reachable through sudo games; dpkg checks still run
    env.update(extra_env)
    start = time.monotonic()
    subprocess.run(["bash", "scripts/setup.sh", *args], cwd=project, env=env, check=check,
                   capture_output=True, timeout=120)
    elapsed = time.monotonic() - start
    return elapsed, log.read_text().splitlines() if log.exists() else []


def test_second_start_skips_pip_and_costs_well_under_a_second(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _, calls = _setup(project, "--dev")
    assert any("pip install" in c and ".[gpu,train,voice,llamacpp,dev]" in c for c in calls)
    elapsed, calls = _setup(project, "--dev")  # no pip at all; the time bound is "under a second", with
    assert calls == [] and elapsed < 0.9      # room for a loaded machine (typically 10-20 ms)
    elapsed, calls = _setup(project)  # the app's set-up: a --dev environment already has everything
    assert calls == [] and elapsed < 0.9


def test_a_changed_pyproject_installs_again(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _setup(project)
    with (project / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency\n")
    _, calls = _setup(project)
    assert any("pip install" in c for c in calls)
    _, calls = _setup(project)
    assert calls == []


def test_llama_cpp_is_built_once_into_a_wheel_cache_and_installed_from_it(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    cache = tmp_path / "wheels"
    monkeypatch.setenv("LUMEN_WHEEL_CACHE", str(cache))
    (tmp_path / "p1").mkdir()
    (tmp_path / "p2").mkdir()
    project = _project(tmp_path / "p1")
    _, calls = _setup(project, "--dev")
    folder = cache / "llama-cpp-python-0.3.36"
    assert any(c.startswith("-m pip wheel") and "llama-cpp-python==0.3.36" in c and str(folder) in c for c in calls)
    assert any("pip install" in c and f"--find-links {folder}" in c for c in calls)
    (folder / "llama_cpp_python-0.3.36-cp312-cp312-linux_x86_64.whl").write_bytes(b"")  # what pip wheel leaves
    _, calls = _setup(_project(tmp_path / "p2"), "--dev")  # a fresh clone: no second build
    assert not any("pip wheel" in c for c in calls) and any(f"--find-links {folder}" in c for c in calls)


def test_the_app_builds_llama_cpp_only_without_an_nvidia_card_and_starts_when_the_build_fails(
        tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("LUMEN_WHEEL_CACHE", str(tmp_path / "wheels"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\nexit 0\n")
    smi.chmod(0o755)
    (tmp_path / "gpu").mkdir()
    _, calls = _setup(_project(tmp_path / "gpu"), path=f"{bin_dir}:/usr/bin:/bin")
    assert not any("pip wheel" in c for c in calls)
    assert any("pip install" in c and ".[gpu,train,voice]" in c for c in calls)
    (tmp_path / "cpu").mkdir()
    project = _project(tmp_path / "cpu")
    _, calls = _setup(project, FAIL_WHEEL="1")  # no compiler, say: the app is set up without llama.cpp
    assert any("pip wheel" in c for c in calls)
    assert any("pip install" in c and ".[gpu,train,voice]" in c for c in calls)
    _, calls = _setup(project, FAIL_WHEEL="1")  # and the next start does not try the build again
    assert calls == []
    (tmp_path / "dev").mkdir()
    _, calls = _setup(_project(tmp_path / "dev"), "--dev", check=False, FAIL_WHEEL="1")  # the tests need it
    assert not any("pip install" in c and "-e" in c for c in calls)
