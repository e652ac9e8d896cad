"""Starts and supervises the engine, sends it requests, and re-emits its events as Qt signals.

The engine normally runs ``engine.worker.serve`` in a process started with the ``spawn`` context
(crash isolation, guaranteed memory release, a UI that never imports torch). A reader ``QThread``
blocks on ``conn.recv()`` and emits each event; Qt queues it to the GUI thread. End of file on the
pipe while we did not ask the engine to stop means it died: the client restarts it (up to
``max_restarts`` within ``restart_window`` seconds), re-sends the last ``LoadModel`` and says so;
after that only ``retry`` (the user's command) starts it again. An engine that sends ``Heartbeat``s
(``engine.worker.serve`` does, from a thread of its own) and then falls silent for ``hang_timeout``
seconds (stopped, deadlocked) is hung: the client kills it and the same restart follows. A slow
request does not stop the heartbeats, so it is never mistaken for a hang.
Tests and ``--engine-in-process`` run the same ``serve`` loop in a thread (``thread_launcher``).
Either way the client holds an ``engine.handle.EngineHandle``, as every other caller of the engine does.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from engine.handle import EngineHandle, run_in_thread
from engine.protocol import Cancel, Heartbeat, LoadModel, Request

log = logging.getLogger(__name__)

Launcher = Callable[[], EngineHandle]


def process_launcher() -> EngineHandle:
    """Run ``engine.worker.serve`` in a spawned child process (``engine.worker.spawn_worker``)."""
    from engine.worker import spawn_worker

    return spawn_worker(log_level=logging.getLogger().getEffectiveLevel())


def thread_launcher(serve: Callable[[Connection], None]) -> Launcher:
    """A launcher that runs ``serve`` in a thread of this process (tests, --engine-in-process)."""
    return functools.partial(run_in_thread, serve)


class _Reader(QThread):
    received = Signal(object)
    closed = Signal()

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.setObjectName("lumen-engine-reader")
        self._conn = conn
        self.last_heard = time.monotonic()  # when the engine last sent anything
        self.heartbeats = False  # it sends Heartbeats: the watchdog may judge its silence

    def run(self) -> None:
        while True:
            try:
                event = self._conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001 - an unpicklable message: log it and keep reading
                log.exception("undecodable message from the engine")
                continue
            self.last_heard = time.monotonic()
            if isinstance(event, Heartbeat):
                self.heartbeats = True
                continue
            self.received.emit(event)
        self.closed.emit()


class EngineClient(QObject):
    event = Signal(object)  # every engine Event, on the GUI thread
    died = Signal()  # the engine ended unexpectedly (before any restart)
    restarted = Signal()  # a new engine is running and has been sent the last LoadModel
    gave_up = Signal()  # it kept dying; not restarted
    hung = Signal()  # it stopped responding and is being ended (``died`` and the restart follow)

    def __init__(self, launcher: Launcher, max_restarts: int = 3, restart_window: float = 120.0,
                 hang_timeout: float = 15.0) -> None:
        super().__init__()
        self._launcher = launcher
        self._handle: EngineHandle | None = None
        self._reader: _Reader | None = None
        self._ids = itertools.count(1)
        self._last_load: LoadModel | None = None
        self._closing = False
        self._deaths: list[float] = []
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.hang_timeout = hang_timeout
        self._watchdog = QTimer(self, timeout=self._check_alive)
        self._watchdog.setInterval(int(min(1.0, hang_timeout / 4) * 1000))

    # ------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._handle is not None

    @property
    def pid(self) -> int | None:
        return self._handle.pid if self._handle else None

    def start(self) -> None:
        self._closing = False
        self._handle = self._launcher()
        self._reader = _Reader(self._handle.conn)
        self._reader.received.connect(self.event)
        self._reader.closed.connect(self._on_closed)
        self._reader.start()
        self._watchdog.start()
        log.info("engine started (pid %s)", self._handle.pid)

    def retry(self) -> bool:
        """Start the engine again after ``gave_up`` (the user asked to); False if it is running."""
        if self._handle is not None:
            return False
        self._deaths.clear()
        self.start()
        if self._last_load is not None:
            self.send(self._last_load)
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask the engine to stop; end it if it does not within ``timeout`` seconds."""
        self._closing = True
        self._watchdog.stop()
        handle, self._handle = self._handle, None
        if handle is None:
            return
        handle.stop(timeout)
        self._join_reader()

    def kill(self) -> None:
        """End the engine abruptly, as a crash would (used by tests and the hard-stop path)."""
        if self._handle is not None:
            self._handle.terminate()

    # ------------------------------------------------------------ requests
    def new_request_id(self) -> int:
        return next(self._ids)

    def send(self, request: Request) -> bool:
        if isinstance(request, LoadModel):
            self._last_load = request
        if self._handle is None:
            return False
        try:
            self._handle.conn.send(request)
        except (OSError, ValueError) as exc:  # broken pipe: the reader reports the death
            log.warning("engine pipe broken on send: %r", exc)
            return False
        return True

    def cancel(self, request_id: int) -> None:
        self.send(Cancel(request_id))

    # ------------------------------------------------------------ supervision
    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.wait(2000)
            self._reader.deleteLater()
            self._reader = None

    def _check_alive(self) -> None:
        reader, handle = self._reader, self._handle
        if reader is None or handle is None or not reader.heartbeats:
            return
        silent = time.monotonic() - reader.last_heard
        if silent > self.hang_timeout:
            log.error("engine silent for %.0f s; ending it (pid %s)", silent, handle.pid)
            self._watchdog.stop()
            self.hung.emit()
            handle.terminate()  # SIGKILL ends even a stopped process; the reader then sees EOF

    def _on_closed(self) -> None:
        if self._closing:
            return
        self._watchdog.stop()
        handle, self._handle = self._handle, None
        log.error("engine ended unexpectedly")
        self._join_reader()
        if handle is not None:
            handle.terminate()
            handle.join(2.0)
            handle.conn.close()
        self.died.emit()
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < self.restart_window] + [now]
        if len(self._deaths) > self.max_restarts:
            log.error("engine died %d times in %.0f s; not restarting", len(self._deaths), self.restart_window)
            self.gave_up.emit()
            return
        self.start()
        if self._last_load is not None:
            self.send(self._last_load)
        self.restarted.emit()
