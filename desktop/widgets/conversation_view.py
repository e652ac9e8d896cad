"""The transcript: a read-only, arrow-navigable view of the conversation, opened only on request.

It reads from the top (or from the start of the last answer, for "recall last answer"); Escape
closes it. Copy last answer and Save as text are here; saving is the only way content reaches disk.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QTextCursor
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QFileDialog, QPlainTextEdit, QPushButton, QVBoxLayout,
)

from desktop import messages
from desktop.widgets import accessible, copy_last_answer


class TranscriptDialog(QDialog):
    def __init__(self, controller, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle(messages.tr("Lumen transcript"))
        self.setObjectName("transcript")
        self.text = accessible(QPlainTextEdit(), messages.tr("Transcript"),
                               messages.tr("The conversation, oldest first. Read with the arrow keys; Escape closes."))
        self.text.setReadOnly(True)
        # Read-only but with a keyboard caret, so screen readers can move by line, word and character.
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                          | Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setTabChangesFocus(True)
        self.copy_button = accessible(QPushButton(messages.tr("&Copy last answer")), messages.tr("Copy last answer"),
                                      messages.tr("Copy the last answer to the clipboard."))
        self.save_button = accessible(QPushButton(messages.tr("&Save as text…")), messages.tr("Save as text"),
                                      messages.tr("Save the whole conversation to a text file you choose."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        accessible(close, messages.tr("Close"), messages.tr("Close the transcript (Escape)."))
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(self.copy_last_answer)
        self.save_button.clicked.connect(self.save)
        self.copy_button.setShortcut(QKeySequence("Ctrl+Shift+C"))
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(700, 500)
        controller.conversation_changed.connect(self.refresh)

    def refresh(self) -> None:
        if self.isVisible():
            position = self.text.textCursor().position()
            self.text.setPlainText(self.controller.conversation.to_text())
            cursor = self.text.textCursor()
            cursor.setPosition(min(position, len(self.text.toPlainText())))
            self.text.setTextCursor(cursor)

    def open(self, at_last_answer: bool = False) -> None:  # noqa: A003 - QDialog.open, requested by the user
        conversation = self.controller.conversation
        self.text.setPlainText(conversation.to_text() or messages.tr(messages.NO_ANSWER_YET))
        cursor = self.text.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.Start)
        if at_last_answer and conversation.last_answer:
            found = self.text.toPlainText().rfind("] Lumen")
            line_start = self.text.toPlainText().rfind("\n", 0, max(found, 0)) + 1
            cursor.setPosition(line_start if found >= 0 else 0)
        self.text.setTextCursor(cursor)
        self.show()
        self.raise_()
        self.activateWindow()
        self.text.setFocus(Qt.FocusReason.OtherFocusReason)

    def copy_last_answer(self) -> None:
        copy_last_answer(self.controller)

    def save(self, path: Path | None = None) -> bool:
        if path is None:
            name, _ = QFileDialog.getSaveFileName(self, messages.tr("Save conversation"),
                                                  str(Path.home() / "lumen-conversation.txt"),
                                                  messages.tr("Text files (*.txt);;All files (*)"))
            if not name:
                return False
            path = Path(name)
        try:
            self.controller.conversation.save_text(path)
        except OSError as exc:
            self.controller.notify(messages.tr(messages.SAVE_FAILED).format(reason=exc.strerror or exc))
            return False
        self.controller.notify(messages.tr(messages.CONVERSATION_SAVED).format(path=path))
        return True
