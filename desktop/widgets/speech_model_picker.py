"""The speech model row of Settings, Speech: which Whisper model recognises spoken questions (the
bundled tiny.en or an installed one), a note on what it can do, and the way to download another
(``desktop.widgets.speech_models_dialog``). A model just downloaded there is selected here at once.

The combo box's accessible description repeats the note, so a screen reader reads the warning (for
example "English only, so questions in German will be refused") when the box gets focus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from desktop import messages
from desktop.speech_output.speaker import Priority
from desktop.speech_model_choice import language_code, language_name
from desktop.widgets import accessible
from engine.store.catalogue import BUNDLED_SPEECH, SPEECH_CATALOGUE, get_speech_model
from engine.store.speech_models import SpeechModelStore

log = logging.getLogger(__name__)


class SpeechModelPicker(QWidget):
    def __init__(self, current: str, language: Callable[[], str], store: SpeechModelStore | None = None,
                 notify: Callable[[str, Priority], None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store or SpeechModelStore()
        self.language = language  # the language box's current value
        self.notify = notify or (lambda text, priority: log.info("%s", text))
        self.dialog = None  # the speech model manager, once opened
        self.combo = accessible(QComboBox(), messages.tr(messages.PICKER), messages.tr(messages.PICKER_DESC))
        self.manage = accessible(QPushButton(messages.tr(messages.MANAGE)), messages.tr(messages.MANAGE).replace("&", ""),
                                 messages.tr(messages.MANAGE_DESC))
        self.manage.clicked.connect(self.open_manager)
        self.note = accessible(QLabel(""), messages.tr(messages.NOTE), messages.tr(messages.NOTE))
        self.note.setWordWrap(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.manage)
        self.fill(current)
        self.combo.currentIndexChanged.connect(lambda _i: self.update_note())

    @property
    def value(self) -> str:
        return self.combo.currentData() or ""

    def fill(self, select: str) -> None:
        """The bundled model, every installed one, and ``select`` even when it is missing (so the
        settings never change behind the user's back; the note says what is wrong)."""
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(messages.tr(messages.PICKER_BUNDLED).format(title=BUNDLED_SPEECH.title), "")
        installed = set(self.store.installed())
        for spec in SPEECH_CATALOGUE:
            if spec.model_id in installed:
                languages = messages.tr(messages.ENGLISH_ONLY if spec.english_only else messages.MANY_LANGUAGES).lower()
                self.combo.addItem(messages.tr(messages.PICKER_INSTALLED).format(title=spec.title, languages=languages), spec.model_id)
            elif spec.model_id == select:
                self.combo.addItem(messages.tr(messages.PICKER_MISSING).format(title=spec.title), spec.model_id)
        self.combo.setCurrentIndex(max(0, self.combo.findData(select)))
        self.combo.blockSignals(False)
        self.update_note()

    def note_text(self) -> str:
        spec = get_speech_model(self.value)
        if spec.model_id and self.store.problem(spec.model_id) is not None:
            return messages.tr(messages.SPEECH_MODEL_MISSING).format(title=spec.title)
        language = self.language()
        if spec.english_only and language_code(language) != "en":
            return messages.tr(messages.NOTE_ENGLISH_ONLY).format(title=spec.title, language=language_name(language))
        languages = messages.tr(messages.ENGLISH_ONLY if spec.english_only else messages.MANY_LANGUAGES)
        return messages.tr(messages.NOTE_OK).format(title=spec.title, languages=languages, summary=spec.summary)

    def update_note(self) -> None:
        text = self.note_text()
        self.note.setText(text)
        self.combo.setAccessibleDescription(f"{messages.tr(messages.PICKER_DESC)} {text}")

    def open_manager(self) -> None:
        from desktop.widgets.speech_models_dialog import SpeechModelsDialog

        self.dialog = SpeechModelsDialog(self.notify, self.store, parent=self.window())
        self.dialog.installed.connect(self._on_installed)
        self.dialog.removed.connect(lambda model_id: self.fill("" if model_id == self.value else self.value))
        self.dialog.finished.connect(lambda _result: self.manage.setFocus())
        self.dialog.open()  # window-modal, does not block: the download reports while it runs

    def _on_installed(self, model_id: str) -> None:
        self.fill(model_id)
        title = get_speech_model(model_id).title
        self.notify(messages.tr(messages.SELECTED).format(title=title), Priority.NEXT)
