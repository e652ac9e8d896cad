"""The small main window: status line, question field, the main commands, and a photo drop target.

The window never takes focus by itself: answers and messages go to the status line (announced to
the screen reader) while the user works elsewhere. It only comes forward when the user asks (the
"ask" hotkey, opening the transcript).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QIcon, QImage, QKeySequence
from PySide6.QtWidgets import (
    QApplication, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QMainWindow, QMessageBox,
    QPushButton, QVBoxLayout, QWidget,
)

from desktop import image_input, messages
from desktop.resources import icon_path
from desktop.widgets import accessible, copy_last_answer, status_line

_FILTER = "Images (" + " ".join(f"*{s}" for s in image_input.SUFFIXES) + ");;All files (*)"


class MainWindow(QMainWindow):
    settings_requested = Signal()
    help_requested = Signal()
    quit_requested = Signal()
    save_requested = Signal()  # save the conversation as text (the transcript dialog does it)

    def __init__(self, controller) -> None:  # noqa: ANN001 - an AssistantController
        super().__init__()
        self.controller = controller
        self.setWindowTitle(messages.APP_NAME)
        self.setWindowIcon(QIcon(str(icon_path())))
        self.setAcceptDrops(True)
        self.setObjectName("main_window")
        self.hide_on_close = False  # set by the tray icon when there is one
        accessible(self, messages.APP_NAME, messages.tr("Describes your screen or a photo and answers questions."))

        self.status_label = status_line(messages.tr(messages.STARTING), messages.tr("Status"),
                                        messages.tr("What Lumen is doing; messages are also announced."))

        self.question = accessible(QLineEdit(), messages.tr("Question"),
                                   messages.tr("Type a question about the last image and press Enter."))
        self.question.setPlaceholderText(messages.tr("Ask about the last image…"))
        self.question.returnPressed.connect(self._ask)
        question_label = QLabel(messages.tr("&Question:"))
        question_label.setBuddy(self.question)

        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        specs = [
            ("ask", "&Ask", "Ask the typed question about the last image.", self._ask),
            ("describe", "&Describe screen", "Capture the whole screen and describe it.",
             lambda: controller.handle_action("describe_screen")),
            ("open", "&Open photo…", "Choose a photo file to describe.", self.open_photo),
            ("paste", "&Paste photo", "Describe the image, or the image file, on the clipboard.", self.paste_photo),
            ("stop", "&Stop", "Stop speaking and stop the answer.", controller.stop),
            ("transcript", "T&ranscript", "Open the conversation so far, to read with the arrow keys.",
             lambda: controller.transcript_requested.emit(False)),
            ("new", "&New conversation", "Forget the images and answers so far.", controller.new_conversation),
            ("settings", "S&ettings…", "Hotkeys, speech, descriptions, model and capture.", self.settings_requested.emit),
        ]
        for i, (key, text, description, slot) in enumerate(specs):
            button = accessible(QPushButton(messages.tr(text)), messages.tr(text).replace("&", "").rstrip("…"),
                                messages.tr(description))
            button.clicked.connect(slot)
            self.buttons[key] = button
            if key != "ask":
                grid.addWidget(button, (i - 1) // 3, (i - 1) % 3)

        self.drop_hint = accessible(QLabel(messages.tr("Drop a photo on this window to describe it.")),
                                    messages.tr("Drop target"), messages.tr("Drag a photo here to describe it."))

        row = QHBoxLayout()
        row.addWidget(question_label)
        row.addWidget(self.question, 1)
        row.addWidget(self.buttons["ask"])
        layout = QVBoxLayout()
        layout.addWidget(self.status_label)
        layout.addLayout(row)
        layout.addLayout(grid)
        layout.addWidget(self.drop_hint)
        central = QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)
        self._build_menus()

        controller.status.connect(self.status_label.setText)
        controller.question_requested.connect(self.focus_question)
        self.setTabOrder(self.question, self.buttons["ask"])

    # ------------------------------------------------------------ menus (every command has a key)
    def _build_menus(self) -> None:
        def action(menu, text: str, slot, shortcuts=()) -> QAction:  # noqa: ANN001
            act = QAction(messages.tr(text), self)
            act.setShortcuts([QKeySequence(s) for s in shortcuts])
            act.triggered.connect(slot)
            menu.addAction(act)
            return act

        c = self.controller
        file_menu = self.menuBar().addMenu(messages.tr("&File"))
        action(file_menu, "&Open photo…", self.open_photo, [QKeySequence.StandardKey.Open])
        self.paste_action = action(file_menu, "&Paste photo", self.paste_photo, ["Ctrl+Shift+V", "Ctrl+V"])
        action(file_menu, "&Save conversation as text…", self.save_requested.emit, ["Ctrl+S"])
        file_menu.addSeparator()
        action(file_menu, "&Quit", self.quit_requested.emit, ["Ctrl+Q"])
        conv = self.menuBar().addMenu(messages.tr("&Conversation"))
        action(conv, "&Describe screen", lambda: c.handle_action("describe_screen"), ["Ctrl+D"])
        action(conv, "Describe &window", lambda: c.handle_action("describe_window"))
        action(conv, "Describe &monitor under the mouse", lambda: c.handle_action("describe_monitor"))
        action(conv, "Choose a &region…", lambda: c.handle_action("region"))
        action(conv, "&Transcript", lambda: c.transcript_requested.emit(False), ["Ctrl+T"])
        action(conv, "&Copy last answer", self.copy_last_answer, ["Ctrl+Shift+C"])
        action(conv, "&New conversation", c.new_conversation, ["Ctrl+N"])
        action(conv, "&Stop", c.stop, ["Escape"])
        tools = self.tools_menu = self.menuBar().addMenu(messages.tr("&Tools"))
        action(tools, "&Settings…", self.settings_requested.emit, ["Ctrl+,"])
        help_menu = self.menuBar().addMenu(messages.tr("&Help"))
        # HelpContents is F1 on Windows and Linux (Ctrl+? on macOS): F1 once, or Qt finds it ambiguous.
        help_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.HelpContents)
        if QKeySequence("F1") not in help_keys:
            help_keys.append(QKeySequence("F1"))
        action(help_menu, "&Keyboard help", self.help_requested.emit, help_keys)

    # ------------------------------------------------------------ commands
    def focus_question(self) -> None:
        """Only on the user's request (the "ask" hotkey): bring the window forward, focus the field."""
        self.show()
        self.raise_()
        self.activateWindow()
        self.question.setFocus(Qt.FocusReason.OtherFocusReason)

    def _ask(self) -> None:
        if self.controller.ask(self.question.text()):
            self.question.clear()

    def copy_last_answer(self) -> None:
        copy_last_answer(self.controller)

    def open_photo(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, messages.tr("Open photo"), str(Path.home()), _FILTER)
        if path:
            self.add_photo_file(Path(path))

    def add_photo_file(self, path: Path) -> None:
        """Describe a photo file; it is read and checked off the GUI thread, then described or refused aloud."""
        self.controller.open_photo(lambda side: image_input.load_file(path, side))

    def paste_photo(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            self._add_qimage(QApplication.clipboard().image())
            return
        paths = self._paths(mime) if mime is not None else []
        if not paths:
            self.controller.notify(messages.tr(messages.NOTHING_TO_PASTE))
            return
        self.add_photo_file(paths[0])

    def _add_qimage(self, qimage: QImage) -> None:
        self.controller.open_photo(lambda side: image_input.from_qimage(qimage, model_side=side))

    @staticmethod
    def _paths(mime) -> list[Path]:  # noqa: ANN001
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        if not paths and mime.hasText():
            paths = image_input.paths_from_text(mime.text())
        return paths

    # ------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        mime = event.mimeData()
        if mime.hasImage() or self._paths(mime):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        mime = event.mimeData()
        paths = self._paths(mime)
        event.acceptProposedAction()
        if paths:
            self.add_photo_file(paths[0])
        elif mime.hasImage():
            self._add_qimage(mime.imageData())

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        """With a tray icon, closing only hides the window (hotkeys keep working); without, it quits."""
        event.ignore()
        self.hide()
        if not self.hide_on_close:
            self.quit_requested.emit()

    def show_help(self, hotkeys: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {messages.tr(messages.HOTKEY_ACTIONS[a])}: {k or messages.tr('not set')}"
                          for a, k in hotkeys)
        box = QMessageBox(QMessageBox.Icon.Information, messages.tr("Lumen keyboard help"),
                          messages.tr(messages.HELP_TEXT).format(hotkeys=lines), QMessageBox.StandardButton.Close, self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard)
        box.exec()
