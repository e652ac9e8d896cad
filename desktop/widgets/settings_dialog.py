"""Settings: hotkeys, descriptions, speech, model, capture. Edits a copy; OK commits with ``replace``.

Every control has a label with a mnemonic (its keyboard path), an accessible name and description.
Hotkeys are checked for conflicts before the dialog accepts; problems are shown and announced, and
focus stays where the user is.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QEvent, QKeyCombination, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QKeySequenceEdit,
    QLabel, QLineEdit, QPlainTextEdit, QPushButton, QSpinBox, QTabWidget, QToolButton, QVBoxLayout, QWidget,
)

from desktop import messages
from desktop.hotkeys import check_bindings
from desktop.settings import DEVICES, CaptureTarget, Hotkeys, PromptPreset, Settings, SpeechOutput
from desktop.widgets import accessible
from desktop.widgets.speech_model_picker import SpeechModelPicker
from engine.protocol import Backend, Quantization

_PRESETS = [(p, messages.PROMPT_PRESETS[p.value]) for p in PromptPreset]
_OUTPUTS = [(SpeechOutput.AUTO, "Screen reader if running, else Lumen's voice"),
            (SpeechOutput.SCREEN_READER, "Screen reader only (Lumen's voice when none runs)"), (SpeechOutput.VOICE, "Lumen's voice only"),
            (SpeechOutput.BOTH, "Both")]
# The model's choices come from their one definition (engine.protocol's enums, the settings' DEVICES);
# here only their labels, one for each choice (tests/desktop/test_settings.py checks).
PRECISION_LABELS = {Quantization.NONE: "Full (16-bit on a GPU)", Quantization.INT8: "8-bit",
                    Quantization.NF4: "4-bit (least memory)"}
DEVICE_LABELS = {"auto": "Automatic", "cuda": "GPU (CUDA)", "cpu": "Processor (slow)", "mps": "Apple GPU"}
BACKEND_LABELS = {Backend.AUTO: "Automatic", Backend.TORCH: "PyTorch", Backend.LLAMACPP: "llama.cpp (GGUF file)"}
_PRECISIONS = [(q.value, PRECISION_LABELS[q]) for q in Quantization]
_DEVICES = [(d, DEVICE_LABELS[d]) for d in DEVICES]
_BACKENDS = [(b.value, BACKEND_LABELS[b]) for b in Backend]
_LANGUAGES = [("en", "English"), ("de", "German"), ("fr", "French"), ("es", "Spanish"), ("it", "Italian"),
              ("nl", "Dutch"), ("pt", "Portuguese"), ("pl", "Polish"), ("sv", "Swedish")]
_TARGETS = [(CaptureTarget.ALL_SCREENS, "All monitors"), (CaptureTarget.MONITOR, "Monitor under the mouse")]


class HotkeyEdit(QKeySequenceEdit):
    """Records one key combination. Tab and Shift+Tab move on, and Alt with a letter or digit is this
    dialog's own Alt key (a row's number, a section): none is recorded. The accessible name carries the
    current key, so a screen reader says it on focus and again when a new key is recorded."""

    def __init__(self, value: str, name: str) -> None:
        super().__init__(QKeySequence(value))
        self._name = name
        self.setMaximumSequenceLength(1)
        self.setClearButtonEnabled(True)
        tab, backtab = Qt.Key.Key_Tab, Qt.Key.Key_Backtab
        self.setFinishingKeyCombinations([QKeyCombination(tab), QKeyCombination(backtab),
                                          QKeyCombination(Qt.KeyboardModifier.ShiftModifier, backtab)])
        self.keySequenceChanged.connect(self._name_with_key)
        self._name_with_key()

    def _name_with_key(self) -> None:
        key = self.keySequence().toString(QKeySequence.SequenceFormat.NativeText) or messages.tr("not set")
        self.setAccessibleName(messages.tr("{name}: {key}").format(name=self._name, key=key))

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if e.key() in _MODIFIER_KEYS:
            return  # Qt would clear the field already: Shift of a Shift+Tab must not erase the key
        super().keyPressEvent(e)

    def event(self, e: QEvent) -> bool:  # noqa: N802 - Qt override
        if e.type() == QEvent.Type.ShortcutOverride and _is_dialog_key(e):
            e.ignore()  # let the dialog's Alt key (mnemonic) act instead of recording it
            return True
        return super().event(e)


_MODIFIER_KEYS = (Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_AltGr, Qt.Key.Key_Meta)


def _is_dialog_key(e: QKeyEvent) -> bool:
    alt_only = e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.AltModifier
    key = e.key()
    return alt_only and (Qt.Key.Key_0 <= key <= Qt.Key.Key_9 or Qt.Key.Key_A <= key <= Qt.Key.Key_Z)


def _combo(choices, current, name: str, description: str) -> QComboBox:  # noqa: ANN001
    box = accessible(QComboBox(), name, description)
    for value, text in choices:
        box.addItem(messages.tr(text), value)
    box.setCurrentIndex(max(0, box.findData(current)))
    return box


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, voices: list[tuple[str, str]] | None = None, parent=None,  # noqa: ANN001
                 notify=None, speech_store=None) -> None:  # noqa: ANN001 - the controller's notify; a SpeechModelStore
        super().__init__(parent)
        self._notify, self._speech_store = notify, speech_store
        self.setWindowTitle(messages.tr("Lumen settings"))
        self.setObjectName("settings")
        self._original = settings
        self.tabs = accessible(QTabWidget(), messages.tr("Settings sections"),
                               messages.tr("Ctrl+Tab moves between sections."))
        self.tabs.addTab(self._hotkeys_tab(settings.hotkeys), messages.tr("&Hotkeys"))
        self.tabs.addTab(self._descriptions_tab(settings), messages.tr("&Descriptions"))
        self.tabs.addTab(self._speech_tab(settings, voices or []), messages.tr("S&peech"))
        self.tabs.addTab(self._model_tab(settings), messages.tr("&Model"))
        self.tabs.addTab(self._capture_tab(settings), messages.tr("&Capture"))
        self.problems = accessible(QLabel(""), messages.tr("Problems"), messages.tr("Why the settings cannot be saved yet."))
        self.problems.setWordWrap(True)
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.problems.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        accessible(buttons.button(QDialogButtonBox.StandardButton.Ok), messages.tr("OK"), messages.tr("Save and close."))
        accessible(buttons.button(QDialogButtonBox.StandardButton.Cancel), messages.tr("Cancel"),
                   messages.tr("Close without saving."))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.problems)
        layout.addWidget(buttons)

    # ------------------------------------------------------------ tabs
    def _form(self) -> tuple[QWidget, QFormLayout]:
        page = QWidget()
        form = QFormLayout(page)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        return page, form

    def _row(self, form: QFormLayout, label: str, widget: QWidget) -> QWidget:
        caption = QLabel(messages.tr(label))
        caption.setBuddy(widget)
        form.addRow(caption, widget)
        return widget

    def _hotkeys_tab(self, hotkeys: Hotkeys) -> QWidget:
        page, form = self._form()
        self.hotkey_edits: dict[str, HotkeyEdit] = {}
        for number, (action, value) in enumerate(hotkeys.items(), start=1):
            name = messages.tr(messages.HOTKEY_ACTIONS[action])
            edit = HotkeyEdit(value, name)
            edit.setAccessibleDescription(messages.tr("Press the new key combination; Backspace clears it."))
            edit.setToolTip(edit.accessibleDescription())
            # The focus goes to Qt's inner line edit: it must carry the name too, and the clear button.
            for inner in edit.findChildren(QLineEdit):
                accessible(inner, name, edit.accessibleDescription())
            for button in edit.findChildren(QToolButton):
                accessible(button, messages.tr("Clear {name}").format(name=name), messages.tr("Remove this hotkey."))
            self.hotkey_edits[action] = edit
            self._row(form, f"&{number} {name}:" if number < 10 else f"{name}:", edit)
        hint = QLabel(messages.tr("After the command key, press S screen, W window, M monitor, R region, F focused control, "
                                  "Q question, A last answer, T read text, D what Lumen is doing, X stop."))
        hint.setWordWrap(True)
        form.addRow(hint)
        return page

    def _descriptions_tab(self, s: Settings) -> QWidget:
        page, form = self._form()
        self.preset = self._row(form, "P&rompt:", _combo(_PRESETS, s.prompt_preset, messages.tr("Prompt"),
                                messages.tr("What Lumen asks about a new capture or photo.")))
        self.custom_prompt = self._row(form, "C&ustom prompt:", accessible(
            QPlainTextEdit(s.custom_prompt), messages.tr("Custom prompt"),
            messages.tr("Used when the prompt is Custom. Tab leaves the field.")))
        self.custom_prompt.setTabChangesFocus(True)
        self.max_tokens = self._row(form, "&Longest answer (tokens):", accessible(
            QSpinBox(), messages.tr("Longest answer in tokens"), messages.tr("About three quarters of a word each.")))
        self.max_tokens.setRange(16, 1000)
        self.max_tokens.setValue(s.max_new_tokens)
        return page

    def _speech_tab(self, s: Settings, voices: list[tuple[str, str]]) -> QWidget:
        page, form = self._form()
        self.output = self._row(form, "&Speak through:", _combo(_OUTPUTS, s.speech_output, messages.tr("Speak through"),
                                messages.tr("Your screen reader (braille follows), Lumen's own voice, or both.")))
        from desktop.speech_output import probe

        self.reader_status = self._row(form, "Screen r&eader now:", accessible(
            QLineEdit(probe().summary()), messages.tr("Screen reader now"),
            messages.tr("The reader Lumen speaks through at this moment, as lumen --check reports it.")))
        self.reader_status.setReadOnly(True)
        from desktop.speech_output.voice_drivers import driver_name

        self.voice = self._row(form, "&Voice:", _combo([("", "System default"), *voices], s.voice, messages.tr("Voice"),
                               messages.tr("Lumen's own voice, spoken by {driver}.").format(driver=driver_name())))
        self.rate = self._row(form, "&Rate (words per minute):", accessible(
            QSpinBox(), messages.tr("Rate in words per minute"), messages.tr("From 80 to 450.")))
        self.rate.setRange(80, 450)
        self.rate.setSingleStep(10)
        self.rate.setValue(s.rate)
        self.volume = self._row(form, "V&olume (percent):", accessible(
            QSpinBox(), messages.tr("Volume in percent"), messages.tr("Lumen's own voice volume.")))
        self.volume.setRange(0, 100)
        self.volume.setValue(round(s.volume * 100))
        self.earcons = self._row(form, "", accessible(QCheckBox(messages.tr("Play so&unds")), messages.tr("Play sounds"),
                                 messages.tr("Short sounds when a request starts, ends or fails.")))
        self.earcons.setChecked(s.earcons)
        self.waiting = self._row(form, "", accessible(QCheckBox(messages.tr("Soft &tick while waiting")),
                                 messages.tr("Soft tick while waiting"),
                                 messages.tr("A quiet repeating sound until the answer starts.")))
        self.waiting.setChecked(s.waiting_sound)
        self.language = self._row(form, "&Language of spoken questions:", _combo(
            _LANGUAGES, s.speech_language, messages.tr("Language of spoken questions"),
            messages.tr("What push-to-talk listens for. Some speech models know English only.")))
        self.speech_model = SpeechModelPicker(s.speech_model, lambda: self.language.currentData(),
                                              self._speech_store, self._notify)
        caption = QLabel(messages.tr("Speech recog&nition model:"))
        caption.setBuddy(self.speech_model.combo)
        form.addRow(caption, self.speech_model)
        form.addRow(self.speech_model.note)
        self.language.currentIndexChanged.connect(lambda _i: self.speech_model.update_note())
        return page

    def _model_tab(self, s: Settings) -> QWidget:
        page, form = self._form()
        self.model_dir = accessible(QLineEdit(s.model_dir), messages.tr("Model folder"),
                                    messages.tr("The folder with lumen_model.json. Empty: the model installed last, else the demo model."))
        browse = accessible(QPushButton(messages.tr("&Browse…")), messages.tr("Browse for the model folder"),
                            messages.tr("Choose the model folder with a folder dialog."))
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_dir, 1)
        row.addWidget(browse)
        caption = QLabel(messages.tr("Model &folder:"))
        caption.setBuddy(self.model_dir)
        form.addRow(caption, row)
        self.precision = self._row(form, "Pr&ecision:", _combo(_PRECISIONS, s.quantization, messages.tr("Precision"),
                                   messages.tr("Lower precision needs less GPU memory.")))
        self.device = self._row(form, "&Run on:", _combo(_DEVICES, s.device, messages.tr("Run on"),
                                messages.tr("Automatic uses the GPU when there is one.")))
        self.backend = self._row(form, "Language model e&ngine:", _combo(
            _BACKENDS, s.backend, messages.tr("Language model engine"),
            messages.tr("Automatic: PyTorch on an NVIDIA GPU with enough memory, otherwise llama.cpp once the model "
                        "has a GGUF file (lumen models gguf). lumen --check says which runs and why.")))
        return page

    def _capture_tab(self, s: Settings) -> QWidget:
        page, form = self._form()
        self.target = self._row(form, "Describe &screen captures:", _combo(
            _TARGETS, s.capture_target, messages.tr("Describe screen captures"),
            messages.tr("What the describe-screen hotkey captures.")))
        self.ocr = self._row(form, "", accessible(QCheckBox(messages.tr("Read &text on screen (OCR)")),
                             messages.tr("Read text on screen"),
                             messages.tr("Recognise the words on screen to ground answers and read text aloud.")))
        self.ocr.setChecked(s.ocr)
        return page

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, messages.tr("Model folder"), self.model_dir.text())
        if folder:
            self.model_dir.setText(folder)

    # ------------------------------------------------------------ result
    def hotkeys(self) -> Hotkeys:
        values = {a: e.keySequence().toString(QKeySequence.SequenceFormat.PortableText)
                  for a, e in self.hotkey_edits.items()}
        return Hotkeys(**values)

    def settings(self) -> Settings:
        return dataclasses.replace(
            self._original, hotkeys=self.hotkeys(), prompt_preset=PromptPreset(self.preset.currentData()),
            custom_prompt=self.custom_prompt.toPlainText().strip(), max_new_tokens=self.max_tokens.value(),
            speech_output=SpeechOutput(self.output.currentData()), voice=self.voice.currentData(),
            rate=self.rate.value(), volume=self.volume.value() / 100, earcons=self.earcons.isChecked(),
            waiting_sound=self.waiting.isChecked(), model_dir=self.model_dir.text().strip(),
            quantization=self.precision.currentData(), device=self.device.currentData(),
            backend=self.backend.currentData(),
            capture_target=CaptureTarget(self.target.currentData()), ocr=self.ocr.isChecked(),
            speech_language=self.language.currentData(), speech_model=self.speech_model.value,
        )

    def problems_found(self) -> list[str]:
        return check_bindings(dict(self.hotkeys().items()))

    def accept(self) -> None:
        problems = self.problems_found()
        if problems:
            self.tabs.setCurrentIndex(0)
            self.problems.setText("\n".join(problems))
            self.problems.show()
            from desktop.announcements import Announcer

            Announcer(self.problems).announce(" ".join(problems), assertive=True)
            return
        super().accept()
