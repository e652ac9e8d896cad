"""What the app speaks through: ``Priority`` (NVDA's ``SpeechPriority``), ``VoiceOptions`` and the
``Speaker`` interface. Lumen's own voice is ``desktop.speech_output.voice``; the earcons are
``desktop.earcons``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from PySide6.QtCore import QObject, Signal


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
