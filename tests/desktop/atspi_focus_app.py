"""A form with a focused field, for the AT-SPI focus test (see test_focus.py); run inside a private
D-Bus session with at-spi-bus-launcher. Writes <workdir>/result.json: the field's screen geometry
and what Lumen's controller asked the grabber for after "describe_focus", then quits.

Lumen's controller runs in this process (the usual case is another application's control; here
the AT-SPI queries come from the controller's worker thread while Qt's thread answers them)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFormLayout, QLineEdit, QWidget

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.desktop.conftest import make_rig  # noqa: E402
from tests.fakes import FakeCapture, ScriptedEngine  # noqa: E402


def main() -> None:
    work = Path(sys.argv[1])
    qt = QApplication(sys.argv[:1])
    form = QWidget()
    form.setWindowTitle("Invoice form")
    layout = QFormLayout(form)
    layout.addRow("Name", QLineEdit("Ada"))
    amount = QLineEdit("120")
    layout.addRow("Amount", amount)
    form.setGeometry(200, 150, 400, 200)
    form.show()
    form.activateWindow()
    amount.setFocus()
    grabber = FakeCapture()
    rig = make_rig(ScriptedEngine(), grabber=grabber)

    def describe() -> None:
        rig.controller.answer_finished.connect(finish)
        rig.controller.handle_action("describe_focus")

    def finish() -> None:
        top_left = amount.mapToGlobal(amount.rect().topLeft())
        ratio = amount.devicePixelRatioF()
        (work / "result.json").write_text(json.dumps({
            "field": [int(top_left.x() * ratio), int(top_left.y() * ratio), int(amount.width() * ratio),
                      int(amount.height() * ratio)],
            "grabs": [[list(dataclasses.astuple(r)) if r else None, label] for r, label in grabber.grabs],
            "spoken": [text for text, _ in rig.speaker.spoken],
        }))
        rig.client.shutdown()
        qt.quit()

    QTimer.singleShot(1500, describe)  # the bridge registers with the registry after the window shows
    QTimer.singleShot(30000, qt.quit)
    qt.exec()


if __name__ == "__main__":
    main()
