"""Composition root: build the services, connect their signals, start. No behaviour of its own.

Optional parts are wired when present: ``desktop.widgets.setup_wizard.SetupWizard`` (first-run model setup),
and screen text / voice questions through ``desktop.integrations``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QDialog

from desktop import integrations, messages, settings as settings_store
from desktop.announcements import Announcer
from desktop.assistant import AssistantController
from desktop.engine_client import EngineClient, Launcher, process_launcher
from desktop.hotkeys import HotkeyService
from desktop.settings import Settings
from desktop.earcons import Earcons
from desktop.speech_output.speaker import Priority, Speaker, VoiceOptions
from desktop.speech_output import ReaderWatch
from desktop.speech_output.voice import VoiceSpeaker
from desktop.widgets import FOCUS_STYLE, install_focus_ring
from desktop.widgets.conversation_view import TranscriptDialog
from desktop.widgets.main_window import MainWindow
from desktop.widgets.settings_dialog import SettingsDialog
from engine.store import model_choice
from desktop.widgets.tray import make_tray

log = logging.getLogger(__name__)


@dataclass
class LumenApp:
    settings: Settings
    settings_path: Path
    engine: EngineClient
    speaker: Speaker
    announcer: Announcer
    earcons: Earcons
    controller: AssistantController
    window: MainWindow
    transcript: TranscriptDialog
    hotkeys: HotkeyService
    startup_message: str | None = None
    first_start: bool = False  # no settings file yet: the setup wizard is offered once
    tray: object | None = None
    extensions: list[object] = field(default_factory=list)

    # ------------------------------------------------------------ behaviour the window asks for
    def open_settings(self) -> None:
        voices = []
        if isinstance(self.speaker, VoiceSpeaker):
            try:
                voices = self.speaker.synthesizer.voices(timeout=2.0)
            except Exception as exc:  # noqa: BLE001 - no voices: the list just offers the default
                log.info("voices unavailable: %r", exc)
        dialog = SettingsDialog(self.settings, voices, self.window, notify=self.controller.notify)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_settings(dialog.settings())

    def apply_settings(self, new: Settings) -> None:
        old, self.settings = self.settings, new
        self.controller.settings = new
        self.speaker.set_options(VoiceOptions(new.voice, new.rate, new.volume))
        self.earcons.enabled, self.earcons.waiting_enabled = new.earcons, new.waiting_sound
        try:
            settings_store.save(new, self.settings_path)
            self.controller.notify(messages.tr(messages.SETTINGS_SAVED))
        except OSError as exc:
            self.controller.notify(messages.tr(messages.SETTINGS_SAVE_FAILED).format(reason=exc.strerror or exc))
        if new.hotkeys != old.hotkeys and self.hotkeys.running:
            self.start_hotkeys()
        if (new.model_dir, new.quantization, new.device, new.backend) != (old.model_dir, old.quantization, old.device,
                                                                        old.backend):
            self.controller.load_model()

    def start_hotkeys(self) -> bool:
        return self.hotkeys.start(dict(self.settings.hotkeys.items()))

    def open_setup_wizard(self) -> None:
        from desktop.widgets.setup_wizard import SetupWizard

        wizard = SetupWizard(notify=self.controller.notify, parent=self.window)
        wizard.model_ready.connect(self.use_installed_model)
        self.extensions.append(wizard)  # keep it alive; open() does not block the event loop
        wizard.open()

    def use_installed_model(self, folder: str, quantization: str, device: str) -> None:
        """The wizard installed a model: use it now (a store model through the automatic rule, so
        a later ``lumen models download`` is used in turn)."""
        new = dataclasses.replace(self.settings, model_dir=model_choice.setting_for(Path(folder)),
                                  quantization=quantization, device=device)
        unchanged = (new.model_dir, new.quantization, new.device) == (
            self.settings.model_dir, self.settings.quantization, self.settings.device)
        self.apply_settings(new)
        if unchanged:  # apply_settings reloads only on a change; the model itself is new
            self.controller.load_model()

    def show_help(self) -> None:
        self.window.show_help(self.settings.hotkeys.items())

    def shutdown(self) -> None:
        self.hotkeys.stop()
        self.speaker.close()
        self.engine.shutdown()


def build(settings_path: Path | None = None, launcher: Launcher | None = None, speaker: Speaker | None = None,
          earcons: Earcons | None = None) -> LumenApp:
    """Everything, connected; nothing started (no engine, no hotkeys) until ``start``."""
    app = QApplication.instance()
    if app is not None:
        app.setStyleSheet(FOCUS_STYLE)
        _watch_screens(app)
        if not app.property("lumen_focus_ring"):
            install_focus_ring(app)
    path = settings_path or settings_store.settings_path()
    first_start = not path.exists()
    loaded = settings_store.load(path)
    settings_store.upgrade_file(loaded, path)  # a file from an older Lumen: keep a copy, write the new version
    s = loaded.settings
    engine = EngineClient(launcher or process_launcher)
    speaker = speaker or VoiceSpeaker(VoiceOptions(s.voice, s.rate, s.volume))
    earcons = earcons or Earcons(s.earcons, s.waiting_sound)
    announcer = Announcer()  # Qt announcements: for readers Lumen cannot address directly
    readers = ReaderWatch(announcer=announcer)
    controller = AssistantController(engine, speaker, readers, earcons, s)
    window = MainWindow(controller)
    announcer.set_source(window.status_label)
    transcript = TranscriptDialog(controller, window)
    hotkeys = HotkeyService()
    lumen = LumenApp(s, path, engine, speaker, announcer, earcons, controller, window, transcript, hotkeys,
                     loaded.message, first_start)

    controller.transcript_requested.connect(transcript.open)
    window.save_requested.connect(lambda: transcript.save())
    window.settings_requested.connect(lumen.open_settings)
    window.help_requested.connect(lumen.show_help)
    window.quit_requested.connect(QApplication.quit)
    hotkeys.activated.connect(controller.handle_action)
    hotkeys.key.connect(controller.keys.key)
    hotkeys.unavailable.connect(
        lambda reason: controller.notify(messages.tr(messages.HOTKEYS_UNAVAILABLE).format(reason=reason)))
    hotkeys.taken.connect(lambda key, action: controller.notify(messages.tr(messages.HOTKEY_IN_USE).format(
        key=key, action=messages.tr(messages.HOTKEY_ACTIONS.get(action, action)))))
    hotkeys.modal_refused.connect(lambda reason: (controller.keys.end(), controller.notify(
        messages.tr(messages.MODAL_KEYS_UNAVAILABLE).format(reason=reason))))
    controller.modal_requested.connect(lambda on: hotkeys.begin_modal() if on else hotkeys.end_modal())
    lumen.tray = make_tray(window, controller, lumen.open_settings, QApplication.quit)
    _add_setup_action(lumen)
    restart = QAction(messages.tr("&Restart engine"), lumen.window)
    restart.triggered.connect(lambda: controller.handle_action("restart_engine"))
    lumen.window.tools_menu.addAction(restart)
    lumen.extensions.extend(integrations.install(lumen))
    return lumen


def start(lumen: LumenApp, hotkeys: bool = True, first_run_setup: bool = True) -> None:
    lumen.window.show()
    lumen.engine.start()
    if lumen.startup_message:
        lumen.controller.notify(lumen.startup_message, Priority.NEXT)
    if hotkeys:
        lumen.start_hotkeys()
    loaded = lumen.controller.load_model()
    if not first_run_setup:
        return
    demo_only = lumen.controller.model_choice is not None and lumen.controller.model_choice.demo
    if not loaded or (demo_only and lumen.first_start):  # no model: every start; only the demo: the first
        lumen.open_setup_wizard()
    if lumen.first_start:
        try:
            settings_store.save(lumen.settings, lumen.settings_path)  # the next start is not a first one
        except OSError as exc:
            log.warning("could not write the settings file: %s", exc)


def _add_setup_action(lumen: LumenApp) -> None:
    action = QAction(messages.tr("Set up &model…"), lumen.window)
    action.triggered.connect(lumen.open_setup_wizard)
    lumen.window.tools_menu.addAction(action)


def _watch_screens(app: QApplication) -> None:
    """Monitors added, removed or resized: the capture threads must see the new layout."""
    from desktop.capture import invalidate_grabbers

    def watch(screen) -> None:  # noqa: ANN001
        screen.geometryChanged.connect(lambda _: invalidate_grabbers())

    for screen in app.screens():
        watch(screen)
    app.screenAdded.connect(lambda screen: (invalidate_grabbers(), watch(screen)))
    app.screenRemoved.connect(lambda _: invalidate_grabbers())
