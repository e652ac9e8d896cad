"""Another application with focus (a notes window with a text field), for the screen-reader tests.

Runs until killed; writes "active" or "inactive" to <argv[1]> every 100 ms once its window has
been active (so a test can tell whether another program took the focus from it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLineEdit, QVBoxLayout, QWidget

qt = QApplication(sys.argv[:1])
qt.setApplicationName("notes")
window = QWidget()
window.setWindowTitle("Notes")
field = QLineEdit(window)
field.setAccessibleName("Note text")
QVBoxLayout(window).addWidget(field)
window.show()
window.activateWindow()
field.setFocus()


state = {"was_active": False}


def report() -> None:
    active = QApplication.activeWindow() is window
    state["was_active"] = state["was_active"] or active
    if state["was_active"]:
        Path(sys.argv[1]).write_text("active" if active else "inactive")
    else:
        window.activateWindow()
    QTimer.singleShot(100, report)


QTimer.singleShot(100, report)
qt.exec()
