"""``ReadText`` served off the describing path: a thread of the engine feeding a child process.

OCR takes 5-25 s on a busy CPU. On the engine's serving thread it would make the next hotkey wait
behind it and Stop could not end it, so ``OcrJobs`` runs it elsewhere:

* one job at a time, in a child process started on the first job and reused (the OCR backend is
  created once there); it runs at the lowest CPU priority (nice 19; Windows: idle class), so an
  answer the user is waiting for gets the CPU first;
* the user's own requests ("read the text") go before ``background`` ones (grounding): queued
  ahead of them, and a running background job is pre-empted (its process ended, the job queued
  again to start over after the user's);
* ``cancel`` drops a queued job, or kills the process running it (the next job starts a fresh
  one); either way the job is answered ``TextRead(cancelled=True)``. A process that dies on its
  own is answered ``Failed`` and the next job starts a fresh one too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from engine.protocol import ErrorKind, Failed, ReadText, TextRead, failure_for

log = logging.getLogger(__name__)

BackendFactory = Callable[[], object]  # -> an engine.perception.ocr.OcrBackend; None = the first usable one


def _lowest_priority() -> None:
    if hasattr(os, "nice"):
        os.nice(19)
    elif sys.platform == "win32":  # not tested here: no Windows machine
        import ctypes

        idle_priority_class = 0x40
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), idle_priority_class)


def _ocr_process_main(conn: Connection, backend: BackendFactory | None) -> None:
    """The child: answer each ``ReadText`` with a ``TextRead`` or a typed ``Failed``."""
    import time

    _lowest_priority()  # answers first: the OCR takes what CPU they leave
    reader = None
    while True:
        try:
            request: ReadText = conn.recv()
        except (EOFError, OSError):
            return
        start = time.perf_counter()
        try:
            from engine.perception import ocr
            from engine.image_io import open_image

            if reader is None:
                reader = backend() if backend is not None else ocr.get_backend()
            lines = ocr.read_text(open_image(request.image), reader)
            event: object = TextRead(request.request_id, lines, time.perf_counter() - start)
        except ImportError as exc:
            event = Failed(request.request_id, ErrorKind.UNAVAILABLE, f"OCR is not installed: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported as a typed failure, the process goes on
            event = failure_for(request, exc)
        conn.send(event)


class OcrJobs:
    def __init__(self, send: Callable[[object], None], backend: BackendFactory | None = None) -> None:
        self._send = send
        self._backend = backend
        self._jobs: list[ReadText] = []
        self._cond = threading.Condition()
        self._running: ReadText | None = None
        self._ending: str | None = None  # why the running job's process was ended: "cancel" or "preempt"
        self._closed = False
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._thread: threading.Thread | None = None

    def submit(self, request: ReadText) -> None:
        with self._cond:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="engine-ocr", daemon=True)
                self._thread.start()
            if request.background:
                self._jobs.append(request)
            else:
                self._queue_ahead(request)
                if self._running is not None and self._running.background:
                    self._kill("preempt")
            self._cond.notify()

    def _queue_ahead(self, request: ReadText) -> None:
        """(Under the lock.) Queue ``request`` before every background job."""
        at = next((i for i, job in enumerate(self._jobs) if job.background), len(self._jobs))
        self._jobs.insert(at, request)

    def cancel(self, request_id: int) -> bool:
        """End job ``request_id`` (queued or running); False when it is not ours."""
        with self._cond:
            for job in self._jobs:
                if job.request_id == request_id:
                    self._jobs.remove(job)
                    self._send(TextRead(request_id, (), cancelled=True))
                    return True
            if self._running is not None and self._running.request_id == request_id:
                self._kill("cancel")  # the job's thread sees the pipe close and answers "cancelled"
                return True
        return False

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._kill("cancel")
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(5.0)

    # ---------------------------------------------------------------- the job thread
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._running = self._jobs.pop(0)
                self._ending = None
                try:
                    conn = self._conn if self._process is not None and self._process.is_alive() else self._start()
                except Exception as exc:  # noqa: BLE001 - e.g. no process can be started: a typed failure
                    log.exception("the OCR process could not be started")
                    conn, event = None, Failed(job.request_id, ErrorKind.INTERNAL, f"OCR process: {exc!r}")
            try:
                if conn is not None:
                    conn.send(job)
                    event = conn.recv()
            except (EOFError, OSError):
                with self._cond:
                    ending = self._ending
                    self._reap()
                    if ending == "preempt":
                        self._running = None
                        self._queue_ahead(job)  # first of the background jobs again
                        continue
                if ending == "cancel":
                    event = TextRead(job.request_id, (), cancelled=True)
                else:
                    log.error("the OCR process ended during a job")
                    event = Failed(job.request_id, ErrorKind.INTERNAL, "the OCR process ended")
            with self._cond:
                self._running = None
            try:
                self._send(event)
            except (OSError, ValueError):
                return

    def _start(self) -> Connection:
        """(Under the lock.) A fresh OCR process; returns our end of its pipe."""
        self._reap()
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe(duplex=True)
        self._process = ctx.Process(target=_ocr_process_main, args=(theirs, self._backend),
                                    name="lumen-ocr", daemon=True)
        self._process.start()
        theirs.close()
        self._conn = ours
        return ours

    def _kill(self, why: str) -> None:
        """(Under the lock.) End the OCR process now; a running job then reads end of file."""
        if self._process is not None and self._process.is_alive():
            self._ending = why
            self._process.kill()

    def _reap(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5.0)
            self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
