"""Alt+letter must reach exactly one control: every mnemonic visible at the same time is unique.

Per window, the scope is what is on screen together: the menu bar titles, buttons and buddy labels
(with each tab page of a tab widget in turn, since hidden pages' mnemonics do not fire), plus each
menu's items on their own.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from PySide6.QtWidgets import QAbstractButton, QApplication, QGroupBox, QLabel, QMenu, QMenuBar, QTabWidget, QWidget


_MNEMONIC = re.compile(r"&([^&\s])")


def mnemonic(text: str) -> str | None:
    found = _MNEMONIC.search(text.replace("&&", ""))
    return found.group(1).lower() if found else None


def visible_mnemonics(window: QWidget) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def add(text: str) -> None:
        key = mnemonic(text)
        if key:
            out.append((key, text))

    for w in window.findChildren(QWidget):
        if not w.isVisibleTo(window) or w.window() is not window:
            continue
        if isinstance(w, QAbstractButton):
            add(w.text())
        elif isinstance(w, QLabel) and w.buddy() is not None:
            add(w.text())
        elif isinstance(w, QGroupBox):
            add(w.title())
        elif isinstance(w, QMenuBar):
            for action in w.actions():
                add(action.text())
        elif isinstance(w, QTabWidget):
            for i in range(w.count()):
                add(w.tabText(i))
    return out


def duplicates(pairs: list[tuple[str, str]]) -> list[list[str]]:
    counts = Counter(k for k, _ in pairs)
    return [[t for k, t in pairs if k == key] for key, n in counts.items() if n > 1]


def assert_unique(window: QWidget) -> int:
    window.show()
    QApplication.processEvents()
    checked = 0
    tabs = [t for t in window.findChildren(QTabWidget) if t.window() is window]
    pages = [(t, i) for t in tabs for i in range(t.count())] or [(None, 0)]
    for tab, index in pages:
        if tab is not None:
            tab.setCurrentIndex(index)
            QApplication.processEvents()
        pairs = visible_mnemonics(window)
        where = f"{window.windowTitle()}" + (f", page {tab.tabText(index)!r}" if tab is not None else "")
        assert not duplicates(pairs), f"{where}: the same Alt key for {duplicates(pairs)}"
        checked += len(pairs)
    for menu in window.findChildren(QMenu):
        pairs = [(mnemonic(a.text()), a.text()) for a in menu.actions() if mnemonic(a.text())]
        assert not duplicates(pairs), f"{window.windowTitle()}, menu {menu.title()!r}: {duplicates(pairs)}"
        checked += len(pairs)
    return checked


def test_main_window_mnemonics_are_unique(lumen) -> None:  # noqa: ANN001
    assert assert_unique(lumen.window) >= 15


def test_settings_and_transcript_mnemonics_are_unique(lumen, qtbot) -> None:  # noqa: ANN001
    from desktop.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(lumen.settings, parent=lumen.window)
    qtbot.addWidget(dialog)
    assert assert_unique(dialog) >= 20
    assert assert_unique(lumen.transcript) >= 2


def test_setup_wizard_and_speech_models_mnemonics_are_unique(qtbot, tmp_path) -> None:  # noqa: ANN001
    from desktop.widgets.setup_wizard import SetupWizard
    from desktop.widgets.speech_models_dialog import SpeechModelsDialog
    from engine.store.model_store import ModelStore
    from engine.store.speech_models import SpeechModelStore
    from tests.desktop.test_setup_wizard import RTX_3060

    wizard = SetupWizard(lambda *_: None, ModelStore(tmp_path / "models"), detect_hardware=lambda: RTX_3060)
    qtbot.addWidget(wizard)
    qtbot.waitUntil(lambda: wizard.hardware is not None, timeout=5000)
    assert assert_unique(wizard) >= 5
    speech = SpeechModelsDialog(lambda *_: None, SpeechModelStore(tmp_path / "speech"))
    qtbot.addWidget(speech)
    assert assert_unique(speech) >= 2
