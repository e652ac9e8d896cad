"""What the app speaks through: ``Priority`` (NVDA's ``SpeechPriority``), ``VoiceOptions``, the
``Speaker`` interface, and the earcons. Lumen's own voice is ``desktop.speech_output.voice``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from PySide6.QtCore import QObject, QTimer, QUrl, Signal


class Priority(IntEnum):
    NOW = 0  # interrupts whatever is being said and drops the queue (a new request, a stop)
    NEXT = 1  # before anything NORMAL still waiting
    NORMAL = 2  # in order (answer sentences)


@dataclass(frozen=True)
class VoiceOptions:
    voice: str = ""
    rate: int = 200
    volume: float = 1.0


class Speaker(QObject):
    """What the app speaks through. ``started`` fires when an utterance's audio starts."""

    started = Signal(str)
    idle = Signal()

    def say(self, text: str, priority: Priority = Priority.NORMAL) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def speaking(self) -> bool:
        raise NotImplementedError

    def set_options(self, options: VoiceOptions) -> None:  # noqa: B027 - optional for fakes
        pass

    def close(self) -> None:  # noqa: B027
        pass


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
