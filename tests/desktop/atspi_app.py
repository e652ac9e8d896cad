"""Run the real Lumen window (scripted engine) for the AT-SPI test; see test_accessibility.py.

argv: <workdir>. Writes <workdir>/controls.json (the accessible names Qt exposes), waits for
<workdir>/ready (the AT-SPI client is listening), describes the screen with screen-reader output,
then quits.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QAbstractButton, QApplication, QComboBox, QLineEdit, QPlainTextEdit, QWidget

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from desktop import app  # noqa: E402
from desktop.engine_client import thread_launcher  # noqa: E402
from desktop.settings import SpeechOutput  # noqa: E402
from tests.fakes import FakeCapture, RecordingEarcons, RecordingSpeaker, ScriptedEngine  # noqa: E402


def visible_controls(root: QWidget) -> list[str]:
    kinds = (QAbstractButton, QLineEdit, QComboBox, QPlainTextEdit)
    out = []
    for w in root.findChildren(QWidget):
        if isinstance(w, kinds) and w.isVisible():
            parent = w.parentWidget()
            if parent is not None and isinstance(parent, QComboBox):
                continue  # the popup's internals; the combo box itself is listed
            out.append(w.accessibleName())
    return out


def main() -> None:
    work = Path(sys.argv[1])
    qt = QApplication(sys.argv[:1])
    qt.setApplicationName("lumen-atspi-test")
    lumen = app.build(work / "settings.json", launcher=thread_launcher(ScriptedEngine().serve),
                      speaker=RecordingSpeaker(), earcons=RecordingEarcons())
    lumen.controller.grabber = FakeCapture()
    lumen.controller.settings = dataclasses.replace(lumen.settings, speech_output=SpeechOutput.SCREEN_READER)
    app.start(lumen, hotkeys=False, first_run_setup=False)
    from desktop.widgets.settings_dialog import SettingsDialog

    from desktop.widgets.setup_wizard import SetupWizard
    from engine.store.hardware import Hardware
    from engine.store.model_store import ModelStore

    dialog = SettingsDialog(lumen.settings, parent=lumen.window)
    dialog.show()
    wizard = SetupWizard(lambda *_: None, ModelStore(work / "models"), parent=lumen.window,
                         detect_hardware=lambda: Hardware((), 16 * 2**30, "test"))
    wizard.show()
    lumen.transcript.open()
    lumen.window.activateWindow()
    qt.processEvents()
    controls = {"main": visible_controls(lumen.window), "settings": visible_controls(dialog),
                "transcript": visible_controls(lumen.transcript)}
    (work / "controls.json").write_text(json.dumps(controls))

    def wait_for_client() -> None:
        if (work / "ready").exists():
            lumen.controller.handle_action("describe_screen")
            lumen.controller.answer_finished.connect(lambda _: QTimer.singleShot(3000, qt.quit))
        else:
            QTimer.singleShot(100, wait_for_client)

    QTimer.singleShot(100, wait_for_client)
    QTimer.singleShot(40000, qt.quit)  # never hang the test
    qt.exec()
    lumen.engine.shutdown()


if __name__ == "__main__":
    main()
