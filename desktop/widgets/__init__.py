"""Lumen's windows and dialogs. Every control: accessible name and description, keyboard path, visible focus."""

# Focus must always be visible, in any theme (high contrast included): a thick border in the
# palette's highlight colour, never a hard-coded colour. Combo and spin boxes keep the style's own
# focus frame: a stylesheet border would hide their arrows.
FOCUS_STYLE = """
QPushButton:focus, QToolButton:focus, QLineEdit:focus, QKeySequenceEdit:focus, QPlainTextEdit:focus,
QTextEdit:focus, QCheckBox:focus, QRadioButton:focus {
    border: 3px solid palette(highlight);
    border-radius: 3px;
}
QPushButton { padding: 4px 10px; }
"""


def accessible(widget, name: str, description: str = ""):  # noqa: ANN001, ANN201
    """Set the accessible name/description (and tooltip) of ``widget``; returns it."""
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
        widget.setToolTip(description)
    return widget


def status_line(text: str, name: str, description: str = ""):  # noqa: ANN201
    """A status line a screen reader can read: read-only text with a keyboard caret (a QLabel's text
    is hidden behind its accessible name), wrapped, as tall as its text so the window grows rather
    than squeezing the controls below it. ``setText``/``text`` as on a label."""
    from math import ceil

    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QFrame, QSizePolicy, QTextEdit

    class StatusLine(QTextEdit):
        def __init__(self) -> None:
            super().__init__()
            self.setReadOnly(True)
            self.setAcceptRichText(False)
            self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                         | Qt.TextInteractionFlag.TextSelectableByMouse)
            self.setTabChangesFocus(True)
            self.setFrameShape(QFrame.Shape.NoFrame)
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.viewport().setBackgroundRole(QPalette.ColorRole.Window)  # looks like a label
            self.document().setDocumentMargin(2)
            self.document().documentLayout().documentSizeChanged.connect(lambda _size: self._fit())
            self.setText(text)
            self._fit()

        def setText(self, value: str) -> None:  # noqa: N802 - the QLabel name its callers use
            self.setPlainText(value)

        def text(self) -> str:
            return self.toPlainText()

        def _fit(self) -> None:
            margins = self.contentsMargins()
            height = ceil(self.document().size().height()) + margins.top() + margins.bottom()
            if height != self.height():
                self.setFixedHeight(height)

        def resizeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
            super().resizeEvent(event)
            self._fit()

    return accessible(StatusLine(), name, description)


def copy_last_answer(controller) -> None:  # noqa: ANN001
    """Copy the conversation's last answer to the clipboard and say so (window and transcript)."""
    from PySide6.QtWidgets import QApplication

    from desktop import messages

    answer = controller.conversation.last_answer
    if answer is None:
        controller.notify(messages.tr(messages.NO_ANSWER_YET))
        return
    QApplication.clipboard().setText(answer)
    controller.notify(messages.tr(messages.ANSWER_COPIED))


def install_focus_ring(app) -> object:  # noqa: ANN001, ANN201
    """A thick highlight-coloured ring around focused combo and spin boxes, which the Fusion style
    leaves unmarked and which a stylesheet border would strip of their arrows."""
    import shiboken6
    from PySide6.QtGui import QPainter, QPalette, QPen
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QFocusFrame

    class FocusRing(QFocusFrame):
        def paintEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
            painter = QPainter(self)
            pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), 3)
            painter.setPen(pen)
            painter.drawRoundedRect(self.rect().adjusted(1, 1, -2, -2), 3, 3)

    def on_focus(_old, new) -> None:  # noqa: ANN001
        ring = app._lumen_focus_ring  # noqa: SLF001
        if not shiboken6.isValid(ring):
            # QFocusFrame moves into its widget's parent, so it dies with a deleted dialog (a Qt file
            # dialog, a closed settings dialog): make a new one rather than fail on every focus change.
            ring = app._lumen_focus_ring = FocusRing()  # noqa: SLF001
        ring.setWidget(new if isinstance(new, (QComboBox, QAbstractSpinBox)) else None)

    app._lumen_focus_ring = FocusRing()  # noqa: SLF001 - lives as long as the application
    app.focusChanged.connect(on_focus)
    app.setProperty("lumen_focus_ring", True)
    return app._lumen_focus_ring  # noqa: SLF001
