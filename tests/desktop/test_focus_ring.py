"""The focus ring around combo and spin boxes survives the dialog it was drawn in being deleted."""

from __future__ import annotations

import shiboken6
from PySide6.QtWidgets import QApplication, QComboBox, QDialog, QLineEdit, QVBoxLayout, QWidget

from desktop.widgets import install_focus_ring


def test_the_ring_outlives_a_deleted_dialog(qtbot) -> None:  # noqa: ANN001
    app = QApplication.instance()
    if not app.property("lumen_focus_ring"):
        install_focus_ring(app)
    window = QWidget()
    field = QLineEdit(window)
    qtbot.addWidget(window)
    window.show()
    dialog = QDialog(window)
    combo = QComboBox(dialog)
    QVBoxLayout(dialog).addWidget(combo)
    dialog.show()
    dialog.activateWindow()
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=5000)
    assert app._lumen_focus_ring.widget() is combo  # the ring now lives inside the dialog
    shiboken6.delete(dialog)  # as a Qt file dialog is deleted once it returns
    window.activateWindow()
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=5000)  # pytest-qt fails the test on an exception in the slot
    second = QComboBox(window)
    second.show()
    second.setFocus()
    qtbot.waitUntil(second.hasFocus, timeout=5000)
    assert shiboken6.isValid(app._lumen_focus_ring) and app._lumen_focus_ring.widget() is second
