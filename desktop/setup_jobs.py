"""Background work for the setup wizard: one job at a time on a plain Python thread, results sent
to the GUI thread as queued Qt signals (the thread never touches a widget), and a throttle that
decides when a percentage is worth saying aloud."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class PercentAnnouncer:
    """Say a percentage at most every ``step`` percent and every ``min_interval`` seconds, so a fast
    download is not a stream of numbers and a slow one is not silent for minutes."""

    def __init__(self, step: int = 10, min_interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.step = step
        self.min_interval = min_interval
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self._last_percent = 0
        self._last_time = float("-inf")
        self._stage = ""

    def feed(self, stage: str, fraction: float | None) -> int | None:
        if stage != self._stage:
            self._stage, self._last_percent, self._last_time = stage, 0, self.clock()
        if fraction is None:
            return None
        percent = int(fraction * 100)
        if percent >= 100 or percent - self._last_percent < self.step:
            return None  # 100 % is said by the "ready" message instead
        now = self.clock()
        if now - self._last_time < self.min_interval:
            return None
        self._last_percent = percent - percent % self.step
        self._last_time = now
        return self._last_percent


class SetupJob(QObject):
    """Runs ``work(progress, cancel)`` on a thread. ``progress`` may be called from that thread."""

    progress = Signal(object)  # engine.store.model_store.SetupProgress
    succeeded = Signal(object)  # whatever work returned
    failed = Signal(object)  # the exception
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, work: Callable[[Callable[[object], None], threading.Event], object], name: str = "setup-job") -> None:
        if self.running:
            raise RuntimeError("a setup job is already running")
        self.cancel = threading.Event()
        cancel = self.cancel

        def run() -> None:
            try:
                result = work(self.progress.emit, cancel)
            except Exception as exc:  # every failure becomes a message, never a dead thread
                log.warning("setup job %s failed: %s", name, exc, exc_info=not hasattr(exc, "kind"))
                self.failed.emit(exc)
            else:
                self.succeeded.emit(result)
            finally:
                self.finished.emit()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def stop(self, wait: float = 0.0) -> None:
        self.cancel.set()
        if wait and self._thread is not None:
            self._thread.join(wait)
