"""Our end of a running engine: the pipe, how to check on and end what serves it, and ``request()``.

Every caller holds the same ``EngineHandle``: the desktop's ``EngineClient`` (which reads events
itself, on a reader thread), ``lumen --check``, the tests and the benchmarks (which use the small
synchronous ``request()``). ``engine.worker.spawn_worker`` starts the engine in a process;
``run_in_thread`` runs a ``serve(conn)`` loop in a thread of this process (tests,
``--engine-in-process``). Torch-free: the desktop imports this module.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from engine.protocol import (Event, Failed, Finished, Heartbeat, ImagesNeeded, LoadModel, ModelReady, Request,
                             Shutdown, TextRead, Transcribed)

log = logging.getLogger(__name__)

# The events that end a request: nothing more comes for it.
_ANSWERS = (Finished, Failed, ImagesNeeded, TextRead, Transcribed)


@dataclass
class EngineHandle:
    """One running engine: our end of the pipe, plus how to check on it and end it."""

    conn: Connection
    is_alive: Callable[[], bool]
    terminate: Callable[[], None]  # ends it abruptly, as a crash would
    join: Callable[[float], None]
    pid: int | None = None

    def send(self, request: Request) -> None:
        self.conn.send(request)

    def recv(self, timeout: float | None = None) -> Event:
        """The engine's next event, heartbeats skipped; ``TimeoutError`` after ``timeout`` seconds,
        ``EOFError`` when the engine has ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is not None and not self.conn.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"no event from the engine within {timeout} s")
            event = self.conn.recv()
            if not isinstance(event, Heartbeat):
                return event

    def request(self, request: Request, timeout: float | None = None) -> list[Event]:
        """Send ``request`` and return its events up to and including the one that ends it
        (``ModelReady`` or ``Failed`` for a load; ``Finished``, ``Failed``, ``ImagesNeeded``,
        ``TextRead`` or ``Transcribed`` with its ``request_id`` otherwise)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.send(request)
        events: list[Event] = []
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"no answer to {type(request).__name__} within {timeout} s: {events}")
            event = self.recv(left)
            events.append(event)
            if isinstance(request, LoadModel):
                if isinstance(event, ModelReady) or (isinstance(event, Failed) and event.request_id is None):
                    return events
            elif isinstance(event, _ANSWERS) and event.request_id == request.request_id:
                return events

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the engine to stop; end it if it does not within ``timeout`` seconds."""
        try:
            self.conn.send(Shutdown())
        except (OSError, ValueError):
            pass
        self.join(timeout)
        if self.is_alive():
            log.warning("engine did not stop in %.1f s; ending it", timeout)
            self.terminate()
            self.join(timeout)
        self.conn.close()


def run_in_thread(serve: Callable[[Connection], None]) -> EngineHandle:
    """Run ``serve`` (e.g. ``engine.worker.serve``) in a thread of this process."""
    parent, child = multiprocessing.Pipe()
    lock = threading.Lock()

    def close_child() -> None:
        with lock:
            if not child.closed:
                child.close()  # the reader then sees EOF, as when a process dies

    def run() -> None:
        try:
            serve(child)
        finally:
            close_child()

    thread = threading.Thread(target=run, name="lumen-engine-thread", daemon=True)
    thread.start()
    # A thread cannot be killed: closing its pipe makes it end at its next recv/send.
    return EngineHandle(parent, thread.is_alive, close_child, thread.join)
