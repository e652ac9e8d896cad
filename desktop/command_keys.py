"""The modal key modes of the controller: the one-letter command layer and the region grid.

While a mode is active the controller asks (``modal_requested(True)``) for the mode's keys
(``hotkeys.MODAL_KEYS``) to be registered with the OS, so they reach Lumen and not the focused
application; other keys, the screen reader's included, are untouched. Every way out (a command,
Enter, Escape, a timeout) unregisters them; the timeouts make sure a forgotten mode never keeps
a blind user's letters away from their applications.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer

from desktop import capture, messages
from desktop.capture import CaptureError
from desktop.hotkeys import LAYER
from desktop.region import RegionNavigator
from desktop.speech_output.speaker import Priority

log = logging.getLogger(__name__)

LAYER_TIMEOUT_MS = 5000
REGION_TIMEOUT_MS = 60000


class CommandKeys(QObject):
    def __init__(self, controller) -> None:  # noqa: ANN001 - an AssistantController
        super().__init__(controller)
        self.c = controller
        self._layer = False
        self._region: RegionNavigator | None = None
        self._timer = QTimer(self, singleShot=True, timeout=self._timeout)

    @property
    def active(self) -> bool:
        return self._layer or self._region is not None

    @property
    def in_region(self) -> bool:
        return self._region is not None

    def start_layer(self) -> None:
        self.end()
        self._layer = True
        self._grab(LAYER_TIMEOUT_MS)
        self.c.notify(messages.tr(messages.COMMAND_LAYER), Priority.NOW)

    def start_region(self) -> None:
        self.c.interrupt()
        try:
            whole, _ = capture.monitors()
        except CaptureError as exc:
            self.c.fail(messages.WAYLAND_NO_REGION if exc.reason == "wayland" else messages.CAPTURE_UNSUPPORTED)
            return
        except Exception:  # noqa: BLE001 - no display or an mss failure
            log.exception("monitors unavailable")
            self.c.fail(messages.CAPTURE_FAILED)
            return
        self._region = RegionNavigator(whole)
        self._grab(REGION_TIMEOUT_MS)
        self.c.notify(messages.tr(messages.REGION_START), Priority.NOW)

    def key(self, name: str) -> None:
        if self._layer:
            self.end()
            if name == "escape":
                self.c.notify(messages.tr(messages.COMMAND_CANCELLED), Priority.NOW)
            elif name in LAYER:
                self.c.handle_action(LAYER[name])
            else:
                self.c.notify(messages.tr(messages.UNKNOWN_COMMAND), Priority.NOW)
            return
        if self._region is None:
            return
        self._timer.start(REGION_TIMEOUT_MS)
        step = self._region.key(name)
        if step.action in ("describe", "ask"):
            self.end()
            self.c.describe("region", step.rect, then_ask=step.action == "ask")
        elif step.action == "cancel":
            self.end()
            self.c.notify(step.message, Priority.NOW)
        elif step.message:
            self.c.notify(step.message, Priority.NOW)

    def end(self) -> None:
        if self.active:
            self._layer = False
            self._region = None
            self._timer.stop()
            self.c.modal_requested.emit(False)

    def _grab(self, timeout_ms: int) -> None:
        self.c.modal_requested.emit(True)
        self._timer.start(timeout_ms)
        self.c.earcons.play("ack")

    def _timeout(self) -> None:
        if self.active:
            self.end()
            self.c.notify(messages.tr(messages.COMMAND_CANCELLED), Priority.NOW)
