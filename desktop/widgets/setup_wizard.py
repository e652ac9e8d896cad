"""The first-run model manager: choose a model, see what it needs and what fits this computer,
then download it (progress bar + spoken percentages) or import official files from a folder.

Keyboard only: Tab moves between the model list, details, precision and the buttons; arrow keys
choose a model; Alt+letter activates a button; Escape cancels running work, or closes. Every control
has an accessible name and description. The wizard never speaks itself: it calls ``notify(text,
priority)``, the app's one way to tell the user something. Work runs on a background thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from desktop import messages as m
from desktop.messages import tr
from desktop.setup_jobs import PercentAnnouncer, SetupJob
from desktop.speech_output.speaker import Priority
from desktop.widgets import status_line
from desktop.widgets.setup_dialog import Notify, SetupDialog
from engine.protocol import Quantization
from engine.store.catalogue import CATALOGUE, ModelSpec
from engine.store.downloads import DownloadError, FailureKind
from engine.store.hardware import Hardware, detect, gigabytes, recommend
from engine.store.core import SetupProgress
from engine.store.model_store import ModelStore
from engine.store.official_files import find_official_files

log = logging.getLogger(__name__)
CPU_CHOICE = "cpu"


class SetupWizard(SetupDialog):
    model_ready = Signal(str, str, str)  # model directory, quantization ("none"/"int8"/"nf4"), device

    def __init__(
        self,
        notify: Notify,
        store: ModelStore | None = None,
        catalogue: tuple[ModelSpec, ...] = CATALOGUE,
        detect_hardware: Callable[[], Hardware] = detect,
        pick_folder: Callable[[], Path | None] | None = None,
        pick_file: Callable[[], Path | None] | None = None,
        endpoint: str | None = None,
        preset: str | None = None,  # engine.minigpt4.config preset override, for tiny demo/test models
        announcer: PercentAnnouncer | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(notify, announcer, parent)
        self.store = store or ModelStore()
        self.catalogue = catalogue
        self.hardware: Hardware | None = None
        self.endpoint, self.preset = endpoint, preset
        self.pick_folder = pick_folder or self._ask_folder
        self.pick_file = pick_file or self._ask_file
        self.job.progress.connect(self._on_progress)
        self.job.failed.connect(self._on_failed)
        self.job.succeeded.connect(lambda out: self._on_done(self._job_spec, out))
        self._job_spec: ModelSpec = catalogue[0]
        self._build()
        self._start_detection(detect_hardware)

    # ------------------------------------------------------------ widgets
    def _build(self) -> None:
        self.setWindowTitle(tr(m.TITLE))
        self.setAccessibleName(tr(m.TITLE))
        self.setAccessibleDescription(tr(m.INTRO))
        intro = QLabel(tr(m.INTRO), wordWrap=True)
        self.models = QListWidget()
        self.named(self.models, m.MODEL_LIST, m.MODEL_LIST_DESC)
        for spec in self.catalogue:
            item = QListWidgetItem(self._model_line(spec))
            item.setData(Qt.ItemDataRole.UserRole, spec.model_id)
            self.models.addItem(item)
        self.details = QPlainTextEdit(readOnly=True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard | Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setTabChangesFocus(True)
        self.named(self.details, m.DETAILS, m.DETAILS)
        self.precision = QComboBox()
        self.named(self.precision, m.PRECISION, m.PRECISION_DESC)
        precision_label = QLabel(tr(m.PRECISION))
        precision_label.setBuddy(self.precision)
        self.token = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.named(self.token, m.TOKEN, m.TOKEN_DESC)
        self.token_label = QLabel(tr(m.TOKEN))
        self.token_label.setBuddy(self.token)
        self.progress = QProgressBar(minimum=0, maximum=100, value=0)
        self.named(self.progress, m.PROGRESS, m.PROGRESS)
        self.status = status_line(tr(m.CHECKING_GPU), tr(m.STATUS), tr(m.STATUS))
        self.download_button = self.button(m.DOWNLOAD, m.DOWNLOAD_DESC, self.start_download)
        self.import_button = self.button(m.IMPORT, m.IMPORT_DESC, self.start_import)
        self.add_button = self.button(m.ADD_FILE, m.ADD_FILE_DESC, self.add_file)
        self.cancel_button = self.button(m.CANCEL, m.CANCEL_DESC, self.cancel)
        self.close_button = self.button(m.CLOSE, m.CLOSE, self.reject)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.import_button, self.add_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        for w in (intro, self.models, self.details, precision_label, self.precision, self.token_label, self.token,
                  self.progress, self.status):
            layout.addWidget(w)
        layout.addLayout(buttons)
        self.models.currentRowChanged.connect(lambda _row: self._show_details())
        self.models.setCurrentRow(0)
        self.models.setFocus()
        self._set_idle()

    def _model_line(self, spec: ModelSpec) -> str:
        state = m.INSTALLED if self.store.is_installed(spec.model_id) else m.NOT_INSTALLED
        return tr(m.MODEL_LINE).format(title=spec.title, size=gigabytes(spec.approx_download_bytes), state=tr(state))

    @property
    def spec(self) -> ModelSpec:
        return self.catalogue[max(0, self.models.currentRow())]

    def _show_details(self) -> None:
        spec = self.spec
        lines = [spec.title + ".", spec.summary, m.memory_text(spec)]
        if self.hardware is not None:
            rec = recommend(spec, self.hardware)
            lines += [m.hardware_text(self.hardware), m.recommendation_text(rec)]
            self._fill_precisions(rec.device if rec.fits else CPU_CHOICE, rec.precision)
        if spec.llm.gated:
            lines.append(tr(m.GATED_NOTE))
        self.token.setVisible(spec.llm.gated)  # only Llama 2 needs a Hugging Face token
        self.token_label.setVisible(spec.llm.gated)
        self.details.setPlainText("\n".join(lines))

    def _fill_precisions(self, device: str, recommended: Quantization | None) -> None:
        self.precision.clear()
        gpu = self.hardware.best_gpu if self.hardware else None
        choices: list[Quantization | None] = []
        if gpu is not None:
            choices = [Quantization.NONE] if gpu.backend == "mps" else [Quantization.NONE, Quantization.NF4, Quantization.INT8]
        choices.append(None)
        for p in choices:
            label = m.precision_name(p) + (tr(m.RECOMMENDED_SUFFIX) if p == recommended and (p or device == CPU_CHOICE) else "")
            self.precision.addItem(label, p.value if p else CPU_CHOICE)
        self.precision.setCurrentIndex(max(0, self.precision.findData(recommended.value if recommended else CPU_CHOICE)))

    def chosen_runtime(self) -> tuple[str, str]:
        """(quantization, device) for the engine's LoadModel, from the precision box."""
        value = self.precision.currentData() or CPU_CHOICE
        if value == CPU_CHOICE:
            return "none", "cpu"
        gpu = self.hardware.best_gpu if self.hardware else None
        device = gpu.backend if gpu else "auto"
        return value, device

    # ------------------------------------------------------------ state
    def _set_busy(self, text: str) -> None:
        self._busy = True
        self.status.setText(text)
        self.announcer.reset()
        self._set_idle()

    def _set_idle(self) -> None:
        """Enable the buttons that make sense now (named for the common case: nothing running)."""
        for b in (self.download_button, self.import_button, self.add_button):
            b.setEnabled(not self._busy and self.hardware is not None)
        self.cancel_button.setEnabled(self._busy and not self.job.cancel.is_set())

    # ------------------------------------------------------------ hardware detection
    def _start_detection(self, detect_hardware: Callable[[], Hardware]) -> None:
        detector = SetupJob(self)
        detector.succeeded.connect(self._on_hardware)
        detector.failed.connect(lambda exc: self._on_hardware(Hardware((), None, "none", str(exc))))
        self._detector = detector
        detector.start(lambda progress, cancel: detect_hardware(), name="gpu-detection")

    def _on_hardware(self, hardware: Hardware) -> None:
        self.hardware = hardware
        self.status.setText(m.hardware_text(hardware))
        self._show_details()
        self._set_idle()

    # ------------------------------------------------------------ actions
    def start_download(self) -> None:
        spec, store = self.spec, self.store
        token = self.token.text().strip() or None
        self._connect_result(spec)
        self._say(tr(m.DOWNLOAD_STARTING).format(title=spec.title), Priority.NOW)
        self._set_busy(self.status.text())

        def work(progress: Callable[[object], None], cancel: threading.Event) -> Path:
            outcome = store.download(spec, progress, cancel, endpoint=self.endpoint, token=token)
            if outcome.missing_by_hand:
                raise _ByHand(outcome.missing_by_hand)
            out = store.install(spec, outcome.official, progress, cancel, preset=self.preset)
            store.discard_llm_download(spec)  # the converted folder holds the same weights
            return out

        self.job.start(work, name="model-download")

    def start_import(self) -> None:
        folder = self.pick_folder()
        if folder is None:
            return
        spec, store = self.spec, self.store
        self._connect_result(spec)
        self._say(tr(m.SEARCHING).format(folder=folder), Priority.NOW)
        self._set_busy(self.status.text())

        def work(progress: Callable[[object], None], cancel: threading.Event) -> Path:
            found = find_official_files(folder, spec.model_id)
            missing = found.missing(spec)
            if missing:
                raise _Missing(missing)
            progress(SetupProgress("converting", spec.title, 0, None))
            return store.install(spec, found, progress, cancel, preset=self.preset)

        self.job.start(work, name="model-import")

    def add_file(self) -> None:
        path = self.pick_file()
        if path is None:
            return
        try:
            self.store.add_file(path)
        except (OSError, DownloadError) as exc:
            log.warning("could not add %s: %s", path, exc)
            kind = getattr(exc, "kind", FailureKind.DISK_FULL)
            self._say(tr(m.FAILURES.get(kind, m.UNEXPECTED)), Priority.NOW)
            return
        self._say(tr(m.ADDED).format(name=path.name))

    def _connect_result(self, spec: ModelSpec) -> None:
        self._job_spec = spec  # the model the running job is for, even if the selection moves

    def _on_progress(self, p: SetupProgress) -> None:
        if p.stage == "converting":
            if self.progress.maximum() != 0:
                self.progress.setRange(0, 0)  # busy indicator: the converter reports no fraction
                self._say(tr(m.CONVERTING))
            return
        self.progress.setRange(0, 100)
        if p.fraction is not None:
            self.progress.setValue(int(p.fraction * 100))
        if p.stage == "downloading" and p.total:
            self.status.setText(tr(m.DOWNLOAD_PROGRESS).format(label=p.label, done=gigabytes(p.done), total=gigabytes(p.total)))
        percent = self.announcer.feed(p.stage, p.fraction)
        if percent is not None:
            words = m.DOWNLOADING_PERCENT if p.stage == "downloading" else m.VERIFYING_PERCENT
            self.notify(tr(words).format(percent=percent), Priority.NORMAL)  # polite: never cuts the user off

    def _on_done(self, spec: ModelSpec, out: Path) -> None:
        self.progress.setRange(0, 100)
        self.progress.setValue(100)
        row = self.catalogue.index(spec)
        self.models.item(row).setText(self._model_line(spec))
        self._say(tr(m.READY).format(title=spec.title), Priority.NOW)
        quantization, device = self.chosen_runtime()
        self.model_ready.emit(str(out), quantization, device)

    def _on_failed(self, exc: Exception) -> None:
        self.progress.setRange(0, 100)
        if isinstance(exc, _Missing):
            self._say(m.missing_text(exc.keys), Priority.NOW)
        elif isinstance(exc, _ByHand):
            self._say(" ".join(tr(m.BY_HAND).format(name=f.name, page=f.page_url) for f in exc.files), Priority.NOW)
        elif isinstance(exc, DownloadError):
            self._say(tr(m.FAILURES.get(exc.kind, m.UNEXPECTED)), Priority.NOW)
        else:
            self._say(tr(m.UNEXPECTED), Priority.NOW)

    # ------------------------------------------------------------ dialogs and keys
    def _ask_folder(self) -> Path | None:
        folder = QFileDialog.getExistingDirectory(self, tr(m.IMPORT).replace("&", ""))
        return Path(folder) if folder else None

    def _ask_file(self) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(self, tr(m.ADD_FILE).replace("&", ""), "", "Checkpoints (*.pth *.bin *.safetensors);;All files (*)")
        return Path(path) if path else None

    def _stop_work(self) -> None:
        super()._stop_work()
        self._detector.stop(wait=5.0)



class _Missing(Exception):
    def __init__(self, keys: tuple[str, ...]) -> None:
        super().__init__(", ".join(keys))
        self.keys = keys


class _ByHand(Exception):
    def __init__(self, files: tuple) -> None:  # tuple[UrlFile, ...]
        super().__init__(", ".join(f.name for f in files))
        self.files = files
