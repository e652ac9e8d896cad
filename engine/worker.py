"""The engine's request loop: ``serve(conn)`` answers protocol requests over a multiprocessing pipe.

In the app it runs in a ``spawn``ed process (crash isolation, guaranteed VRAM release, a UI that never
imports torch); tests and ``--engine-in-process`` run the very same loop in a thread. A receiver
thread reads the pipe so that ``Cancel`` reaches a running generation within one decoding step. OCR
(``ReadText``) never takes the serving thread: the receiver hands it to ``engine.perception.ocr_jobs.OcrJobs``
(its own thread and process), so it never delays a ``Describe`` and ``Cancel`` ends it. A thread of
its own sends a ``Heartbeat`` every second (the desktop's watchdog restarts an engine that falls
silent). Every failure becomes a typed ``Failed`` event: the caller is never left hanging.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import queue
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from engine.handle import EngineHandle
from engine.perception.ocr_jobs import BackendFactory, OcrJobs
from engine.protocol import (Cancel, Describe, ErrorKind, Failed, Finished, ForgetConversation, ImagesNeeded,
                             LoadModel, ModelReady, Progress, ReadText, Request, Shutdown, TextDelta,
                             Transcribe, Transcribed, failure_for)
from engine.protocol import HEARTBEAT_SECONDS, Backend, Heartbeat

log = logging.getLogger(__name__)


class _Session:
    """State of one serving loop (the loaded model lives here, never in a module global)."""

    def __init__(self, conn: Connection, ocr_backend: BackendFactory | None = None) -> None:
        self.conn = conn
        self._send_lock = threading.Lock()  # the serving, OCR and heartbeat threads all send
        self.ocr = OcrJobs(self.send, ocr_backend)
        self.describer = None
        self.inbox: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.cancelled: set[int] = set()
        self.running_id: int | None = None
        self.running_cancel: threading.Event | None = None
        self.stopped = threading.Event()  # ends the heartbeat thread

    def send(self, event: object) -> None:
        with self._send_lock:
            self.conn.send(event)

    def beat_forever(self) -> None:
        """Tell the desktop this engine is alive, every second, whatever the serving thread does."""
        while True:
            try:
                self.send(Heartbeat())
            except (OSError, ValueError):
                return
            if self.stopped.wait(HEARTBEAT_SECONDS):
                return

    # ---------------------------------------------------------------- receiving
    def receive_forever(self) -> None:
        while True:
            try:
                request = self.conn.recv()
            except (EOFError, OSError):
                self.inbox.put(Shutdown())
                return
            if isinstance(request, Cancel):
                if self.ocr.cancel(request.request_id):
                    continue
                with self.lock:
                    self.cancelled.add(request.request_id)
                    if self.running_id == request.request_id and self.running_cancel is not None:
                        self.running_cancel.set()
                continue
            if isinstance(request, ReadText):
                self.ocr.submit(request)
                continue
            self.inbox.put(request)
            if isinstance(request, Shutdown):
                return

    # ---------------------------------------------------------------- handlers
    def handle(self, request: Request) -> None:
        if isinstance(request, LoadModel):
            self.load(request)
        elif isinstance(request, Describe):
            self.describe(request)
        elif isinstance(request, Transcribe):
            self.transcribe(request)
        elif isinstance(request, ForgetConversation):
            if self.describer is not None:
                self.describer.forget(request.conversation_id)
        else:
            self.send(Failed(None, ErrorKind.BAD_REQUEST, f"unknown request {type(request).__name__}"))

    @staticmethod
    def backend_for(request: LoadModel) -> tuple[Backend, str]:
        from engine.store import gguf_convert
        from engine.store.backends import choose_backend, llamacpp_installed

        gguf = gguf_convert.available(Path(request.model_dir))
        if request.backend != Backend.AUTO:
            return choose_backend(request.backend, None, 0, gguf, llamacpp_installed())
        import torch

        free = None
        if request.device in ("auto", "cuda") or request.device.startswith("cuda:"):
            if torch.cuda.is_available():
                free = torch.cuda.mem_get_info()[0]
        needed = 0
        if free is not None:
            from engine.minigpt4.converter import read_model_config
            from engine.minigpt4.loading import required_bytes

            config = read_model_config(Path(request.model_dir))
            needed = required_bytes(config, torch.float16, request.quantization)
        return choose_backend(Backend.AUTO, free, needed, gguf, llamacpp_installed())

    def load(self, request: LoadModel) -> None:
        self.send(Progress("loading", None))
        self.unload()
        from engine.minigpt4.describer import Describer
        from engine.minigpt4.loading import load_model

        backend, why = self.backend_for(request)
        log.info("language model back-end: %s", why)
        loaded = load_model(request.model_dir, device=request.device, dtype=request.dtype,
                            quantization=request.quantization, backend=backend,
                            gguf_precision=request.gguf_precision)
        self.describer = Describer(loaded, static_cache=request.static_cache)
        gpu_bytes = None
        if loaded.device.type == "cuda":
            import torch

            gpu_bytes = int(torch.cuda.memory_allocated(loaded.device))
        self.send(ModelReady(loaded.summary, str(loaded.device), str(loaded.dtype).removeprefix("torch."),
                             loaded.quantization, gpu_bytes, loaded.warnings,
                             image_size=loaded.config.vision.image_size))

    def unload(self) -> None:
        if self.describer is None:
            return
        self.describer = None
        gc.collect()
        _empty_cuda_cache()

    def describe(self, request: Describe) -> None:
        rid = request.request_id
        if self.describer is None:
            self.send(Failed(rid, ErrorKind.NO_MODEL_LOADED, "Describe before a model was loaded"))
            return
        cancel = threading.Event()
        with self.lock:
            if rid in self.cancelled:
                cancel.set()
            self.running_id, self.running_cancel = rid, cancel
        try:
            if cancel.is_set():
                self.send(Finished(rid, "", cancelled=True))
                return
            self.send(Progress("describing", None, rid))
            from engine.minigpt4.describer import MissingImage

            try:
                reply, stats = self.describer.describe(
                    request, cancel=cancel, on_delta=lambda text: self.send(TextDelta(rid, text)))
            except MissingImage as exc:  # restarted or evicted: the desktop sends them and asks again
                self.send(ImagesNeeded(rid, exc.image_ids))
                return
            self.send(Finished(rid, reply.text, cancelled=reply.cancelled, stats=stats))
        finally:
            with self.lock:
                self.running_id, self.running_cancel = None, None
                self.cancelled.discard(rid)

    def transcribe(self, request: Transcribe) -> None:
        from engine.perception import speech_recognition  # numpy; faster-whisper only when it transcribes

        start = time.perf_counter()
        text = speech_recognition.transcribe(request.wav, request.language, model_path=request.model_path)
        self.send(Transcribed(request.request_id, text, time.perf_counter() - start))


def _empty_cuda_cache() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def serve(conn: Connection, ocr_backend: BackendFactory | None = None) -> None:
    """Serve requests until ``Shutdown`` or until the other end of the pipe closes.
    ``ocr_backend``: makes the ``engine.perception.ocr`` backend (picklable); None = the first usable one."""
    session = _Session(conn, ocr_backend)
    receiver = threading.Thread(target=session.receive_forever, name="engine-receiver", daemon=True)
    receiver.start()
    threading.Thread(target=session.beat_forever, name="engine-heartbeat", daemon=True).start()
    while True:
        request = session.inbox.get()
        if isinstance(request, Shutdown):
            break
        try:
            session.handle(request)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller as an event
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            failed = failure_for(request, exc)
            log.log(logging.ERROR if failed.kind is ErrorKind.INTERNAL else logging.WARNING,
                    "request %s failed: %s", type(request).__name__, failed.detail)
            if failed.kind is ErrorKind.OUT_OF_MEMORY:
                gc.collect()
                _empty_cuda_cache()
            try:
                session.send(failed)
            except (OSError, EOFError):
                break
    session.ocr.close()
    session.stopped.set()
    session.unload()


# -------------------------------------------------------------------- starting a worker


def _process_main(conn: Connection, log_level: int) -> None:
    logging.basicConfig(level=log_level, format="engine %(levelname)s %(name)s: %(message)s")
    # The app starts this process daemonic (so it ends with the app), and multiprocessing refuses
    # children to a daemonic process: let it start the OCR process (engine.perception.ocr_jobs; a daemon of
    # its own, ended when this one exits).
    multiprocessing.current_process().daemon = False
    serve(conn)


def spawn_worker(log_level: int = logging.WARNING) -> EngineHandle:
    """Start the engine in a fresh ``spawn`` process (CUDA cannot be forked). The same loop runs in a
    thread with ``engine.handle.run_in_thread(serve)`` (tests, ``--engine-in-process``)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=True)
    process = ctx.Process(target=_process_main, args=(child, log_level), name="lumen-engine", daemon=True)
    process.start()
    child.close()
    return EngineHandle(parent, process.is_alive, process.kill, process.join, process.pid)
