"""A stand-in ``nvidia-smi`` executable on PATH: detection runs its real subprocess path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

RTX_3060 = "0, NVIDIA GeForce RTX 3060, 12288, 11800, 550.54.14"


def install_nvidia_smi(directory: Path, stdout: str, exit_code: int = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\ncat <<'EOF'\n{stdout}\nEOF\nexit {exit_code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.fixture()
def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = install_nvidia_smi(tmp_path / "bin", RTX_3060)
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return exe
