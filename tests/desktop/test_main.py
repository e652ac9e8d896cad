"""The `lumen` entry point: subcommands are dispatched before any window or torch is loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import desktop.__main__ as entry

ROOT = Path(__file__).resolve().parents[2]


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


def test_missing_optional_command_gives_a_clear_message(capsys) -> None:  # noqa: ANN001
    assert entry._delegate("desktop.no_such_module", "main", [], "the frobnicator") == 2
    assert "the frobnicator is not available" in capsys.readouterr().err
