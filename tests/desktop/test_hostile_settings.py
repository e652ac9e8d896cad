"""Hostile settings files (tests/hostile_corpus.py): start-up never hangs, crashes or runs out of
memory; defaults are used and the message tells where the old file went, truthfully."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from desktop import messages
from desktop import settings as store
from tests.hostile_corpus import settings_cases

CASES = settings_cases()
pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(("name", "make"), CASES, ids=[c[0].replace(" ", "-") for c in CASES])
def test_hostile_settings_file_gives_defaults_and_a_true_message(name, make, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "settings.json"
    make(path)
    result = store.load(path)
    assert result.message is not None
    if name == "wrong types":  # the file parses: only its bad fields are reset, the file is copied
        assert result.settings.rate == store.Settings().rate and result.backup.is_file()
        return
    assert result.settings == store.Settings()
    assert result.backup is not None and os.path.lexists(result.backup)  # the backup it names exists
    assert str(result.backup) in result.message and not os.path.lexists(path)
    store.save(result.settings, path)  # and the next start reads a good file again
    assert store.load(path).message is None


def test_a_backup_that_could_not_be_written_is_not_named(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    if os.geteuid() == 0:  # root ignores folder permissions: make the move fail as a read-only folder does
        def refuse(src: object, dst: object) -> None:
            raise PermissionError(13, "Permission denied", str(dst))
        monkeypatch.setattr(store.os, "replace", refuse)
    else:
        tmp_path.chmod(0o555)
    try:
        result = store.load(path)
    finally:
        tmp_path.chmod(0o755)
    assert result.backup is None and result.settings == store.Settings()
    assert result.message == messages.SETTINGS_CORRUPT_NOT_KEPT.format(path=path)
    assert not list(tmp_path.glob("settings.json.corrupt-*"))


def test_the_app_starts_and_speaks_with_deeply_nested_settings(qtbot, tmp_path) -> None:  # noqa: ANN001
    """Once a RecursionError on every start: no window, no message."""
    from tests.desktop.conftest import build_app

    path = tmp_path / "settings.json"
    path.write_text("[" * 100000 + "]" * 100000)
    lumen = build_app(qtbot, path)
    try:
        assert any(t.startswith("Your settings file could not be read") for t in lumen.speaker.texts)
        assert Path(str(next(tmp_path.glob("settings.json.corrupt-*")))).read_text().startswith("[[[")
    finally:
        lumen.engine.shutdown()
