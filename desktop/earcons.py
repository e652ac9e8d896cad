"""The earcons: short sounds that say a request was taken, is still running, is done, failed or stopped."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, QUrl


class Earcons(QObject):
    """Short sounds: 'ack' (request taken), 'done', 'error', 'stopped', and a soft 'waiting' tick."""

    NAMES = ("ack", "done", "error", "stopped", "waiting")

    def __init__(self, enabled: bool = True, waiting_enabled: bool = True, interval_ms: int = 1800) -> None:
        super().__init__()
        from PySide6.QtMultimedia import QSoundEffect

        from desktop.resources import sound_path

        self.enabled = enabled
        self.waiting_enabled = waiting_enabled
        self._effects = {}
        for name in self.NAMES:
            effect = QSoundEffect(self)
            effect.setSource(QUrl.fromLocalFile(str(sound_path(name))))
            self._effects[name] = effect
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(lambda: self.play("waiting"))

    def play(self, name: str) -> None:
        if self.enabled:
            self._effects[name].play()

    def start_waiting(self) -> None:
        if self.enabled and self.waiting_enabled:
            self._timer.start()

    def stop_waiting(self) -> None:
        self._timer.stop()

    @property
    def waiting(self) -> bool:
        return self._timer.isActive()
