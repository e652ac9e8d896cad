"""The `lumen` entry point: subcommands are dispatched before any window or torch is loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import desktop.__main__ as entry

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.system
def test_lumen_models_list_runs_the_model_manager_without_qt_or_torch(tmp_path) -> None:  # noqa: ANN001
    code = ("import sys, desktop.__main__ as m; rc = m.main(['models', 'list']);"
            "print('LOADED', [x for x in ('torch', 'PySide6.QtWidgets') if x in sys.modules]); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
                              "LUMEN_MODELS_DIR": str(tmp_path / "models")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "vicuna0-7b" in out.stdout and "LOADED []" in out.stdout


def test_check_flag_goes_to_desktop_check_with_the_other_arguments(monkeypatch) -> None:  # noqa: ANN001
    import desktop.check

    seen: list[list[str]] = []
    monkeypatch.setattr(desktop.check, "main", lambda argv: seen.append(argv) or 3)
    assert entry.main(["--check", "--json"]) == 3
    assert seen == [["--json"]]


def _second_copy(tmp_path, runtime, *flags: str) -> subprocess.Popen:  # noqa: ANN001
    env = {**__import__("os").environ, "XDG_RUNTIME_DIR": str(runtime), "QT_QPA_PLATFORM": "offscreen",
           "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.Popen([sys.executable, "-m", "desktop", "--no-hotkeys", "--settings", str(tmp_path / "s2.json"),
                             *flags], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_exit(qtbot, proc: subprocess.Popen) -> str:  # noqa: ANN001
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=30000)  # the running copy answers meanwhile
    assert proc.returncode == 0
    return proc.stderr.read()


def test_a_second_copy_says_lumen_is_already_running_and_comes_forward_only_when_asked(
        qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from desktop import messages
    from tests.desktop.conftest import build_app

    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    lock, name = entry.claim_instance()
    assert lock is not None and name.startswith(str(runtime))  # private to the user, not a shared tmp
    lumen = build_app(qtbot, tmp_path / "settings.json", start=False)
    server = entry.listen(name, lumen)
    try:
        assert entry.claim_instance()[0] is None  # the lock is held

        out = _wait_exit(qtbot, _second_copy(tmp_path, runtime))
        assert messages.ALREADY_RUNNING in out
        qtbot.waitUntil(lambda: messages.ALREADY_RUNNING in lumen.speaker.texts, timeout=5000)
        assert not lumen.window.isVisible()  # a plain start never brings the window forward

        out = _wait_exit(qtbot, _second_copy(tmp_path, runtime, "--show"))
        assert messages.ALREADY_RUNNING in out
        qtbot.waitUntil(lumen.window.isVisible, timeout=5000)  # the menu entry asks for it
    finally:
        server.close()
        lock.unlock()
        lumen.engine.shutdown()
    relock, _ = entry.claim_instance()  # the next start is the first again
    assert relock is not None
    relock.unlock()


def test_a_lock_left_by_a_crashed_copy_does_not_block_the_next_start(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    code = ("import os, sys; sys.path.insert(0, '.'); import desktop.__main__ as m;"
            "from PySide6.QtCore import QCoreApplication; app = QCoreApplication([]);"
            "lock, _ = m.claim_instance(); assert lock is not None; os._exit(9)")  # dies holding the lock
    env = {**__import__("os").environ, "XDG_RUNTIME_DIR": str(runtime)}
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=60).returncode == 9
    assert (runtime / "lumen.lock").exists()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    lock, _ = entry.claim_instance()
    assert lock is not None
    lock.unlock()
