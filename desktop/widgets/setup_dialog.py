"""What the two setup dialogs (the model wizard, the speech models manager) share: one background
job (``desktop.setup_jobs.SetupJob``) at a time, announced progress, named controls, and keys that
stop the work first: Escape cancels a running job, a second Escape (or closing) closes the dialog;
closing always ends the job, so no thread emits into a dialog that is gone."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import QDialog, QPushButton, QWidget

from desktop.messages import tr
from desktop.setup_jobs import PercentAnnouncer, SetupJob
from desktop.speech_output.speaker import Priority
from desktop.widgets import accessible

Notify = Callable[[str, Priority], None]


class SetupDialog(QDialog):
    """Subclasses build ``self.status`` (a ``status_line``) and ``self.cancel_button``, and say which
    buttons make sense in ``_set_idle``; they connect ``self.job``'s ``progress``/``failed``/``succeeded``."""

    def __init__(self, notify: Notify, announcer: PercentAnnouncer | None, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.notify = notify
        self.announcer = announcer or PercentAnnouncer()
        self.job = SetupJob(self)
        self.job.finished.connect(self._on_finished)
        self._busy = False

    def named(self, widget, name: str, description: str):  # noqa: ANN001, ANN201
        """``widgets.accessible`` with the message keys translated (and the mnemonic's & dropped)."""
        return accessible(widget, tr(name).replace("&", ""), tr(description))

    def button(self, text: str, description: str, slot: Callable[[], None]) -> QPushButton:
        button = self.named(QPushButton(tr(text)), text, description)
        button.setAutoDefault(False)
        button.clicked.connect(slot)
        return button

    # ------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        return self._busy

    def _on_finished(self) -> None:
        self._busy = False
        self._set_idle()

    def _say(self, text: str, priority: Priority = Priority.NEXT) -> None:
        self.status.setText(text)
        self.notify(text, priority)

    def cancel(self) -> None:
        if self._busy:
            self.job.stop()
            self.cancel_button.setEnabled(False)

    # ------------------------------------------------------------ keys and closing
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Escape and self._busy:
            self.cancel()  # Escape stops the work first; a second Escape closes
            return
        super().keyPressEvent(event)

    def _stop_work(self) -> None:
        """Cancel and join the worker threads; the parts of a download are kept for next time."""
        self.job.stop(wait=5.0)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self._stop_work()
        super().closeEvent(event)

    def reject(self) -> None:
        self._stop_work()
        super().reject()
