"""Render the screenshots in this folder: `xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/screenshots/render.py`.
(Set LUMEN_MODELS_DIR and LUMEN_CONFIG_DIR to empty folders so your own models and settings stay out.)

The real windows, with a scripted engine answering one screen description and a follow-up.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QThread, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from desktop import app  # noqa: E402
from desktop.engine_client import thread_launcher  # noqa: E402
from desktop.settings import SpeechOutput  # noqa: E402
from desktop.widgets.settings_dialog import SettingsDialog  # noqa: E402
from tests.fakes import FakeCapture, RecordingEarcons, RecordingSpeaker, ScriptedEngine  # noqa: E402

OUT = Path(__file__).resolve().parent
ANSWER = ("The screen shows an email app with a message from the bank. "
          "A dialog in the middle asks whether to save the attachment, with Save and Cancel buttons. ")
FOLLOW_UP = "The Save button is on the left, and it is highlighted as the default button. "


def main() -> None:
    qt = QApplication(sys.argv[:1])
    engine = ScriptedEngine(answer=ANSWER.strip(), delay=0.0)
    lumen = app.build(Path(tempfile.mkdtemp()) / "settings.json", launcher=thread_launcher(engine.serve),
                      speaker=RecordingSpeaker(), earcons=RecordingEarcons())
    lumen.controller.grabber = FakeCapture()
    lumen.controller.settings = dataclasses.replace(lumen.settings, speech_output=SpeechOutput.VOICE)
    app.start(lumen, hotkeys=False, first_run_setup=False)
    lumen.window.resize(720, 300)
    def next_step() -> None:
        step = next(steps, None)
        if step is not None:
            step()
            QTimer.singleShot(600, next_step)

    def focus(window, widget) -> None:  # noqa: ANN001 - show the focus ring as the user sees it
        window.activateWindow()
        widget.setFocus()
        for _ in range(20):
            qt.processEvents()
            if window.isActiveWindow():
                break
            QThread.msleep(25)

    def shoot() -> None:
        focus(lumen.window, lumen.window.question)
        lumen.window.grab().save(str(OUT / "main-window.png"))
        lumen.transcript.open(at_last_answer=False)
        focus(lumen.transcript, lumen.transcript.text)
        lumen.transcript.grab().save(str(OUT / "transcript.png"))
        dialog = SettingsDialog(lumen.settings, [("en", "English"), ("fr", "French")], lumen.window)
        dialog.show()
        focus(dialog, dialog.hotkey_edits["describe_screen"])
        dialog.grab().save(str(OUT / "settings-hotkeys.png"))
        dialog.tabs.setCurrentIndex(2)
        focus(dialog, dialog.output)
        dialog.grab().save(str(OUT / "settings-speech.png"))
        dialog.speech_model.open_manager()  # the speech model manager ("Download speech models…")
        manager = dialog.speech_model.dialog
        manager.resize(640, 480)
        manager.models.setCurrentRow(4)
        focus(manager, manager.models)
        manager.grab().save(str(OUT / "speech-models.png"))
        lumen.engine.shutdown()
        qt.quit()

    steps = iter([
        lambda: lumen.controller.handle_action("describe_screen"),
        lambda: (setattr(engine, "answer", FOLLOW_UP.strip()), lumen.controller.ask("Which button is the default?")),
        lambda: lumen.window.question.setText("Is there a date on the message?"),
        shoot,
    ])

    QTimer.singleShot(300, next_step)
    qt.exec()


if __name__ == "__main__":
    main()
