"""Spoken answers never outlive the process that spoke them, not even after a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from desktop.speech_output.voice import private_temp_dir

ROOT = Path(__file__).resolve().parents[2]
_MAKE = textwrap.dedent("""
    import os, signal, sys
    from desktop.speech_output.voice import private_temp_dir
    folder = private_temp_dir(sys.argv[1])
    (folder / "utterance-1.wav").write_bytes(b"RIFF an answer")
    print(folder, flush=True)
    if sys.argv[2] == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()  # "alive": until the test closes our input
""")


@pytest.mark.skipif(os.name != "posix", reason="POSIX process ids")
def test_folders_of_crashed_processes_are_removed_at_start_and_live_ones_kept() -> None:
    prefix = f"lumen-voice-test{os.getpid()}x"  # the real scheme, a prefix of this test's own
    crashed = subprocess.run([sys.executable, "-c", _MAKE, prefix, "crash"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert crashed.returncode == -9
    left = Path(crashed.stdout.strip())
    assert (left / "utterance-1.wav").exists()  # what a crash used to leave in /dev/shm
    live = subprocess.Popen([sys.executable, "-c", _MAKE, prefix, "live"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        other = Path(live.stdout.readline().strip())
        mine = private_temp_dir(prefix)
        try:
            assert not left.exists()
            assert (other / "utterance-1.wav").exists()  # another running Lumen's is left alone
            assert mine.name.startswith(f"{prefix}{os.getpid()}-") and oct(mine.stat().st_mode & 0o777) == "0o700"
        finally:
            mine.rmdir()
    finally:
        live.communicate("", timeout=30)
    assert other.exists()  # the live process ended without closing: the next start cleans it
    private_temp_dir(prefix).rmdir()
    assert not other.exists()
