"""The speech model manager: see the Whisper models Lumen can use for spoken questions, what each
needs, and download (progress bar + spoken percentages, cancel, resume) or remove one.

Opened from Settings, Speech ("Download speech models…"). Keyboard only: Tab moves between the list,
the details and the buttons; arrow keys choose a model; Alt+letter activates a button; Escape
cancels a running download, or closes. Every control has an accessible name and description. Like
the setup wizard it never speaks itself (``notify``), and the download runs on a background thread
(``desktop.setup_jobs``) through ``engine.store.speech_models`` (the only network use: an explicit click).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPlainTextEdit, QProgressBar, QVBoxLayout, QWidget,
)

from desktop import messages as m
from desktop.messages import tr
from desktop.setup_jobs import PercentAnnouncer
from desktop.speech_output.speaker import Priority
from desktop.widgets import status_line
from desktop.widgets.setup_dialog import Notify, SetupDialog
from engine.store.catalogue import SPEECH_CATALOGUE, SpeechModelSpec
from engine.store.downloads import DownloadError
from engine.store.hardware import gigabytes
from engine.store.core import SetupProgress
from engine.store.speech_models import SpeechModelStore

log = logging.getLogger(__name__)


def languages_text(spec: SpeechModelSpec) -> str:
    return tr(m.ENGLISH_ONLY if spec.english_only else m.MANY_LANGUAGES)


def details_text(spec: SpeechModelSpec) -> str:
    return tr(m.SPEECH_DETAILS_TEXT).format(
        title=spec.title, languages=languages_text(spec), summary=spec.summary, size=gigabytes(spec.approx_size_bytes),
        memory=gigabytes(spec.ram_bytes), slowdown=f"{spec.slowdown:g}", repo=spec.repo_id)


class SpeechModelsDialog(SetupDialog):
    installed = Signal(str)  # model id, after a download was verified and installed
    removed = Signal(str)

    def __init__(self, notify: Notify, store: SpeechModelStore | None = None,
                 catalogue: tuple[SpeechModelSpec, ...] = SPEECH_CATALOGUE, endpoint: str | None = None,
                 announcer: PercentAnnouncer | None = None, parent: QWidget | None = None) -> None:
        super().__init__(notify, announcer, parent)
        self.store = store or SpeechModelStore()
        self.catalogue = catalogue
        self.endpoint = endpoint
        self.job.progress.connect(self._on_progress)
        self.job.failed.connect(self._on_failed)
        self.job.succeeded.connect(lambda _out: self._on_done(self._job_spec))
        self._job_spec = catalogue[0]
        self._build()

    # ------------------------------------------------------------ widgets
    def _build(self) -> None:
        self.setWindowTitle(tr(m.SPEECH_TITLE))
        self.setAccessibleName(tr(m.SPEECH_TITLE))
        self.setAccessibleDescription(tr(m.SPEECH_INTRO))
        intro = QLabel(tr(m.SPEECH_INTRO), wordWrap=True)
        self.models = self.named(QListWidget(), m.SPEECH_LIST, m.SPEECH_LIST_DESC)
        for spec in self.catalogue:
            item = QListWidgetItem(self._line(spec))
            item.setData(Qt.ItemDataRole.UserRole, spec.model_id)
            self.models.addItem(item)
        self.details = self.named(QPlainTextEdit(readOnly=True), m.DETAILS, m.DETAILS)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard | Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setTabChangesFocus(True)
        self.progress = self.named(QProgressBar(minimum=0, maximum=100, value=0), m.PROGRESS, m.PROGRESS)
        self.status = status_line(tr(m.SPEECH_IDLE), tr(m.STATUS), tr(m.STATUS))
        self.download_button = self.button(m.DOWNLOAD, m.SPEECH_DOWNLOAD_DESC, self.start_download)
        self.remove_button = self.button(m.SPEECH_REMOVE, m.SPEECH_REMOVE_DESC, self.remove)
        self.cancel_button = self.button(m.CANCEL, m.SPEECH_CANCEL_DESC, self.cancel)
        self.close_button = self.button(m.CLOSE, m.CLOSE, self.reject)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.remove_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        for w in (intro, self.models, self.details, self.progress, self.status):
            layout.addWidget(w)
        layout.addLayout(buttons)
        self.models.currentRowChanged.connect(lambda _row: self._show_details())
        self.models.setCurrentRow(0)
        self.models.setFocus()

    def _line(self, spec: SpeechModelSpec) -> str:
        state = m.INSTALLED if self.store.is_installed(spec.model_id) else m.NOT_INSTALLED
        return tr(m.SPEECH_LINE).format(title=spec.title, languages=languages_text(spec),
                                        size=gigabytes(spec.approx_size_bytes), state=tr(state))

    @property
    def spec(self) -> SpeechModelSpec:
        return self.catalogue[max(0, self.models.currentRow())]

    def _show_details(self) -> None:
        self.details.setPlainText(details_text(self.spec))
        self._set_idle()

    # ------------------------------------------------------------ state
    def _set_idle(self) -> None:
        self.download_button.setEnabled(not self._busy)  # also repairs an installed model
        self.remove_button.setEnabled(not self._busy and self.store.is_installed(self.spec.model_id))
        self.cancel_button.setEnabled(self._busy and not self.job.cancel.is_set())

    def _refresh_line(self, spec: SpeechModelSpec) -> None:
        self.models.item(self.catalogue.index(spec)).setText(self._line(spec))

    # ------------------------------------------------------------ actions
    def start_download(self) -> None:
        if self._busy:
            return
        spec, store, endpoint = self.spec, self.store, self.endpoint
        self._job_spec = spec
        self._busy = True
        self.announcer.reset()
        self.progress.setValue(0)
        self._say(tr(m.SPEECH_STARTING).format(title=spec.title), Priority.NOW)
        self._set_idle()

        def work(progress: Callable[[object], None], cancel: threading.Event) -> Path:
            return store.download(spec, progress, cancel, endpoint=endpoint)

        self.job.start(work, name="speech-model-download")

    def remove(self) -> None:
        spec = self.spec
        if self._busy or not self.store.is_installed(spec.model_id):
            return
        try:
            self.store.remove(spec.model_id)
        except OSError as exc:
            log.warning("could not remove %s: %s", spec.model_id, exc)
            self._say(tr(m.UNEXPECTED), Priority.NOW)
            return
        self._refresh_line(spec)
        self._set_idle()
        self.download_button.setFocus()  # the focused Remove button was just disabled
        self._say(tr(m.SPEECH_REMOVED).format(title=spec.title), Priority.NOW)
        self.removed.emit(spec.model_id)

    def _on_progress(self, p: SetupProgress) -> None:
        if p.fraction is not None:
            self.progress.setValue(int(p.fraction * 100))
        if p.stage == "downloading" and p.total and p.label != "done":
            self.status.setText(tr(m.DOWNLOAD_PROGRESS).format(label=p.label, done=gigabytes(p.done), total=gigabytes(p.total)))
        percent = self.announcer.feed(p.stage, p.fraction)
        if percent is not None:
            self.notify(tr(m.DOWNLOADING_PERCENT).format(percent=percent), Priority.NORMAL)  # polite

    def _on_done(self, spec: SpeechModelSpec) -> None:
        self.progress.setValue(100)
        self._refresh_line(spec)
        self._say(tr(m.SPEECH_READY).format(title=spec.title), Priority.NOW)
        self.installed.emit(spec.model_id)

    def _on_failed(self, exc: Exception) -> None:
        if isinstance(exc, DownloadError):
            self._say(tr(m.SPEECH_FAILURES.get(exc.kind, m.UNEXPECTED)), Priority.NOW)
        else:
            self._say(tr(m.UNEXPECTED), Priority.NOW)

    # ------------------------------------------------------------ keys and closing
