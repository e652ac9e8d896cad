"""Recording fakes at the seams (the way NVDA's speechSpySynthDriver records speech).

* ``ScriptedEngine``: a ``serve(conn)`` loop speaking the real protocol with scripted answers,
  honouring Cancel between deltas, caching images per conversation like the real engine (and
  answering ``ImagesNeeded`` for an image it has neither cached nor been sent).
* ``SlowOcr``: an ``engine.perception.ocr`` backend that takes its time (a busy CPU), for the real worker.
* ``RecordingSpeaker`` / ``RecordingReader`` / ``RecordingEarcons``: record what the user would hear.
* ``FakeCapture``: a grabber returning a fixed picture (or a black one), counting grabs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from desktop.capture import Capture, Rect
from desktop.speech_output.speaker import Priority, Speaker
from desktop.speech_output import ReaderError, ScreenReader
from engine.protocol import (
    Cancel, Describe, ErrorKind, Failed, Finished, ForgetConversation, GenerationStats, ImagesNeeded, LoadModel,
    ModelReady, Progress, Quantization, ReadText, Shutdown, TextDelta, TextLine, TextRead, Transcribe,
    Transcribed,
)


@dataclass
class ScriptedEngine:
    """Answers every Describe with ``answer`` split into ``chunks`` deltas, ``delay`` seconds apart."""

    answer: str = "A window with a button. The button says OK. Nothing else is visible."
    delay: float = 0.01
    fail_with: ErrorKind | None = None
    die_after_deltas: int | None = None  # end the serve loop mid-answer (a crash, as seen by the client)
    ocr_lines: tuple[str, ...] = ("Invoice 2041", "Total due: 120 euros")
    heard: str = "What is the total?"
    requests: list = field(default_factory=list)
    _cache: dict = field(default_factory=dict)

    def chunks(self) -> list[str]:
        words = self.answer.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]

    def serve(self, conn) -> None:  # noqa: ANN001
        self._cache = {}  # a new engine process starts with an empty image cache
        cancelled: set[int] = set()
        inbox: list = []
        lock = threading.Lock()

        def poll() -> None:
            while conn.poll(0):
                msg = conn.recv()
                with lock:
                    if isinstance(msg, Cancel):
                        cancelled.add(msg.request_id)
                    else:
                        inbox.append(msg)

        while True:
            try:
                if not inbox:
                    msg = conn.recv()
                else:
                    msg = inbox.pop(0)
            except (EOFError, OSError):
                return
            self.requests.append(msg)
            if isinstance(msg, Shutdown):
                return
            if isinstance(msg, Cancel):
                cancelled.add(msg.request_id)
            elif isinstance(msg, ForgetConversation):
                self._cache.pop(msg.conversation_id, None)
            elif isinstance(msg, LoadModel):
                for f in (0.0, 0.5, 1.0):
                    conn.send(Progress("loading", f))
                conn.send(ModelReady("scripted", "cpu", "float32", Quantization.NONE, warnings=("cpu_slow",)))
            elif isinstance(msg, Describe):
                if self._describe(conn, msg, cancelled, poll) == "died":
                    return
            elif isinstance(msg, ReadText):
                lines = tuple(TextLine(t, (10, 10 + 30 * i, 200, 30 + 30 * i), 0.99)
                              for i, t in enumerate(self.ocr_lines))
                conn.send(TextRead(msg.request_id, lines, 0.01))
            elif isinstance(msg, Transcribe):
                conn.send(Transcribed(msg.request_id, self.heard, 0.01))

    def _describe(self, conn, msg: Describe, cancelled: set[int], poll) -> str | None:  # noqa: ANN001
        if self.fail_with is not None:
            conn.send(Failed(msg.request_id, self.fail_with, "scripted failure"))
            return None
        cached = self._cache.setdefault(msg.conversation_id, set())
        needed = {i for t in msg.history for i in t.image_ids} | set(msg.new_image_ids)
        missing = needed - cached - {image.image_id for image in msg.images}
        if missing:
            conn.send(ImagesNeeded(msg.request_id, tuple(sorted(missing))))
            return None
        encoded = len(needed - cached)
        cached |= needed
        text = ""
        for n, chunk in enumerate(self.chunks()):
            time.sleep(self.delay)
            poll()
            if msg.request_id in cancelled:
                conn.send(Finished(msg.request_id, text, cancelled=True))
                return None
            if self.die_after_deltas is not None and n >= self.die_after_deltas:
                return "died"
            conn.send(TextDelta(msg.request_id, chunk))
            text += chunk
        stats = GenerationStats(new_tokens=len(self.chunks()), images_encoded=encoded,
                                images_from_cache=len(needed) - encoded)
        conn.send(Finished(msg.request_id, text.strip(), stats=stats))
        return None


@dataclass
class SlowOcr:
    """An ``engine.perception.ocr`` backend taking ``seconds`` per image, then reading one line. Picklable, for
    ``engine.worker.serve(conn, ocr_backend=functools.partial(SlowOcr, seconds))``."""

    seconds: float = 60.0
    name: str = "slow"

    def read(self, image) -> list[TextLine]:  # noqa: ANN001
        time.sleep(self.seconds)
        return [TextLine("Slow text", (0, 0, 90, 12), 0.9)]


class PriorityOcr:
    """An ``engine.perception.ocr`` backend that reads the CPU priority (niceness) of the process it runs in."""

    name = "priority"

    def read(self, image) -> list[TextLine]:  # noqa: ANN001
        import os

        return [TextLine(f"nice {os.nice(0)}", (0, 0, 90, 12), 1.0)]


class RecordingSpeaker(Speaker):
    """Records utterances and stops; 'speaks' each utterance instantly (started fires at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.spoken: list[tuple[str, Priority]] = []
        self.stops = 0
        self._speaking = False

    def say(self, text: str, priority: Priority = Priority.NORMAL) -> None:
        self.spoken.append((text, priority))
        self.started.emit(text)

    def stop(self) -> None:
        self.stops += 1

    @property
    def speaking(self) -> bool:
        return False

    @property
    def texts(self) -> list[str]:
        return [t for t, _ in self.spoken]


class RecordingReader(ScreenReader):
    """A screen reader that records what it is given, and the ``ReaderWatch`` seam the controller
    asks (``current``: this reader while ``active``). ``fail`` makes every call raise ReaderError."""

    name = "Recording reader"
    supports_braille = True

    def __init__(self, active: bool = False, fail: bool = False) -> None:
        self.active, self.fail = active, fail
        self.spoken: list[tuple[str, bool]] = []  # (text, interrupt)
        self.brailled: list[str] = []
        self.cancels = 0
        self.forgotten = 0
        self.qt_announced: list[tuple[str, bool]] = []  # Qt announcements (no reader took the text)

    def current(self) -> ScreenReader | None:
        return self if self.active else None

    def forget(self) -> None:
        self.forgotten += 1

    def announce(self, text: str, interrupt: bool) -> None:
        self.qt_announced.append((text, interrupt))

    def _check(self) -> None:
        if self.fail:
            raise ReaderError("the reader is gone")

    def speak(self, text: str, interrupt: bool = False) -> None:
        self._check()
        self.spoken.append((text, interrupt))

    def braille(self, text: str) -> None:
        self._check()
        self.brailled.append(text)

    def cancel(self) -> None:
        self._check()
        self.cancels += 1


class RecordingEarcons:
    def __init__(self) -> None:
        self.played: list[str] = []
        self.waiting = False

    def play(self, name: str) -> None:
        self.played.append(name)

    def start_waiting(self) -> None:
        self.waiting = True

    def stop_waiting(self) -> None:
        self.waiting = False


class FakeCapture:
    """A grabber: returns a picture with content (or a black one), records the rects asked for."""

    def __init__(self, black: bool = False, size: tuple[int, int] = (320, 200)) -> None:
        from PIL import Image, ImageDraw

        image = Image.new("RGB", size, (0, 0, 0) if black else (240, 240, 240))
        if not black:
            draw = ImageDraw.Draw(image)
            draw.rectangle((40, 40, 200, 120), outline=(0, 0, 0), fill=(30, 90, 200))
            draw.text((60, 70), "OK", fill=(255, 255, 255))
        self.image = image
        self.grabs: list[tuple[Rect | None, str]] = []

    def __call__(self, rect: Rect | None, label: str) -> Capture:
        self.grabs.append((rect, label))
        rect = rect or Rect(0, 0, *self.image.size)
        return Capture(self.image.tobytes(), self.image.size, rect, label)
