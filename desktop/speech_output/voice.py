"""Lumen's own voice: one priority queue, synthesis in one dedicated thread, stoppable playback.

pyttsx3 must be created and driven from a single thread (pyttsx3 issues #193, #262, #327), and
2.99 on Linux cannot interrupt its own playback, nor queue several files per ``runAndWait``
(docs/environment.md section 4). So ``Synthesizer`` owns pyttsx3 in its own thread and renders one
utterance per ``runAndWait`` to WAV bytes; ``VoiceSpeaker`` plays them with QtMultimedia, which
stops at once. The queue follows NVDA's ``SpeechPriority``: NOW interrupts and clears, NEXT goes
before NORMAL, NORMAL waits its turn. All decisions happen on the GUI thread.

Privacy: a WAV exists on disk only between synthesis and being read back (milliseconds), in a
private directory on tmpfs (/dev/shm) where available; it is deleted at once.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import QTimer, QUrl, Signal

from desktop.speech import Priority, Speaker, VoiceOptions

log = logging.getLogger(__name__)


class SpeechQueue:
    """Pure NOW/NEXT/NORMAL ordering; ``push`` says whether the current utterance must stop."""

    def __init__(self) -> None:
        self._next: deque[str] = deque()
        self._normal: deque[str] = deque()

    def push(self, text: str, priority: Priority) -> bool:
        if priority is Priority.NOW:
            self.clear()
            self._next.append(text)
            return True
        (self._next if priority is Priority.NEXT else self._normal).append(text)
        return False

    def pop(self) -> str | None:
        if self._next:
            return self._next.popleft()
        if self._normal:
            return self._normal.popleft()
        return None

    def peek(self) -> str | None:
        return self._next[0] if self._next else (self._normal[0] if self._normal else None)

    def clear(self) -> None:
        self._next.clear()
        self._normal.clear()

    def __len__(self) -> int:
        return len(self._next) + len(self._normal)


class Synthesizer:
    """Owns pyttsx3 in one thread; ``render(text, voice)`` returns a Future of WAV bytes.

    pyttsx3 2.99's command queue races its espeak loop: the first ``runAndWait`` after ``init``
    writes nothing, and property changes land a call or two late (measured; see the tests). So
    the engine is warmed up until it produces audio, a voice change is followed by warm-up renders,
    an empty result is retried once, and rate and volume are applied at playback instead
    (``VoiceSpeaker``), where they take effect at once and exactly.
    """

    WARM_UP = "Ready."

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[str, str, Future[bytes]] | None] = queue.Queue()
        self._dir = private_temp_dir("lumen-speech-")
        self._voices: Future[list[tuple[str, str]]] = Future()
        self.base_rate = 200  # words per minute of the unmodified voice (read from the engine)
        self._voice = ""
        self._default_voice: str | None = None
        self._counter = 0
        self._thread = threading.Thread(target=self._run, name="lumen-tts", daemon=True)
        self._thread.start()

    def render(self, text: str, voice: str = "") -> Future[bytes]:
        future: Future[bytes] = Future()
        self._jobs.put((text, voice, future))
        return future

    def voices(self, timeout: float = 5.0) -> list[tuple[str, str]]:
        """(id, name) of every installed voice."""
        return self._voices.result(timeout)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(5.0)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _run(self) -> None:
        try:
            import pyttsx3

            engine = pyttsx3.init()
            _poll_espeak_faster(engine)
            self.base_rate = int(engine.getProperty("rate") or 200)
            self._default_voice = engine.getProperty("voice")
            self._voices.set_result([(v.id, v.name) for v in engine.getProperty("voices")])
            self._warm_up(engine)
        except Exception as exc:  # noqa: BLE001 - no TTS: every render fails with this reason
            log.error("text to speech unavailable: %r", exc)
            if not self._voices.done():
                self._voices.set_exception(exc)
            engine = None
        while (job := self._jobs.get()) is not None:
            text, voice, future = job
            if not future.set_running_or_notify_cancel():
                continue
            if engine is None:
                future.set_exception(RuntimeError("text to speech unavailable"))
                continue
            try:
                if voice != self._voice:
                    engine.setProperty("voice", voice or self._default_voice)
                    self._voice = voice
                    self._warm_up(engine)
                data = self._render_one(engine, text) or self._render_one(engine, text)
                if not data:
                    raise RuntimeError("synthesis produced no audio")
                future.set_result(data)
            except Exception as exc:  # noqa: BLE001 - reported to the caller through the future
                future.set_exception(exc)

    def _warm_up(self, engine, attempts: int = 3) -> None:  # noqa: ANN001
        for _ in range(attempts):
            if self._render_one(engine, self.WARM_UP):
                return

    def _render_one(self, engine, text: str) -> bytes | None:  # noqa: ANN001
        """One utterance per runAndWait (2.99 drops queued files); the WAV is deleted at once."""
        self._counter += 1
        path = self._dir / f"u{self._counter}.wav"
        try:
            engine.save_to_file(text, str(path))
            engine.runAndWait()
            if not path.exists() or path.stat().st_size <= 44 + 2 * 220:  # header + <10 ms of audio
                return None
            return path.read_bytes()
        finally:
            path.unlink(missing_ok=True)


def _poll_espeak_faster(engine) -> None:  # noqa: ANN001
    """pyttsx3's espeak driver starts the (asynchronous) synthesis, then polls for its end every
    10 ms: 8-10 of the ~11 ms an utterance takes, all of it on the way to the first spoken word.
    Poll every millisecond instead; otherwise the same loop. Other drivers (SAPI5,
    NSSpeechSynthesizer) and driver versions whose internals differ from 2.9x's are left alone."""
    driver = getattr(getattr(engine, "proxy", None), "_driver", None)
    needed = ("_looping", "_proxy", "_text_to_say", "_start_synthesis", "iterate")
    if type(driver).__module__ != "pyttsx3.drivers.espeak" or not all(hasattr(driver, n) for n in needed):
        return

    def start_loop() -> None:
        driver._looping = True
        driver._proxy.setBusy(False)
        if driver._text_to_say:
            driver._start_synthesis(driver._text_to_say)
        while driver._looping:
            driver.iterate()
            if driver._looping:
                time.sleep(0.001)

    driver.startLoop = start_loop


def private_temp_dir(prefix: str) -> Path:
    """A 0700 temporary folder, in RAM (/dev/shm) where there is one, so speech never reaches a disk.

    Its name holds this process's id. A process that ends without ``close`` (a crash, a kill) leaves
    its folder and the utterance in it (one was transcribed back to its answer), so the folders of
    ``prefix`` whose process is gone are removed first."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    remove_stale_dirs(Path(base or tempfile.gettempdir()), prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))


def remove_stale_dirs(base: Path, prefix: str) -> None:
    """Remove this user's ``prefix<pid>-*`` folders in ``base`` whose process has ended (and
    ``prefix*`` folders without a process id, an older Lumen's, a day after their last change).
    POSIX only: on Windows signal 0 would not probe a process, and the folders are in the user's
    own temporary folder."""
    if os.name != "posix":
        return
    for path in base.glob(f"{prefix}*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        try:
            info = path.lstat()
            if not path.is_dir() or path.is_symlink() or info.st_uid != os.getuid():
                continue
            if pid.isdigit():
                os.kill(int(pid), 0)
                continue  # that process still runs
            if time.time() - info.st_mtime < 86400:
                continue
        except ProcessLookupError:
            pass
        except OSError:  # gone meanwhile, or another user's process: leave it
            continue
        shutil.rmtree(path, ignore_errors=True)


class VoiceSpeaker(Speaker):
    """pyttsx3 voice, played with QMediaPlayer so that ``stop`` cuts a sentence off at once."""

    _rendered = Signal(int, object)  # (generation, wav bytes or exception), from the TTS thread

    def __init__(self, options: VoiceOptions | None = None, synthesizer: Synthesizer | None = None) -> None:
        super().__init__()
        from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

        self._options = options or VoiceOptions()
        self._synth = synthesizer or Synthesizer()
        self._queue = SpeechQueue()
        self._generation = 0
        self._current: str | None = None
        self._waiting = False  # a render for the current utterance is in flight
        # Each utterance is played from a file in a private RAM folder: QMediaPlayer's FFmpeg backend
        # deadlocks or crashes when stop() meets a QIODevice source (setSourceDevice) mid-load
        # (reproduced: 3 of 3 stress runs hung; the same loop with file sources never did).
        self._dir = private_temp_dir("lumen-voice-")
        self._files: list[Path] = []
        self._counter = 0
        self._player = QMediaPlayer(self)
        self._output = QAudioOutput(self)
        self._player.setAudioOutput(self._output)
        if hasattr(self._player, "setPitchCompensation"):  # Qt >= 6.10: faster speech, same pitch
            self._player.setPitchCompensation(True)
        self.set_options(self._options)
        self._player.playbackStateChanged.connect(self._on_state)
        self._player.mediaStatusChanged.connect(self._on_status)
        self._player.errorOccurred.connect(self._on_error)
        self._rendered.connect(self._on_rendered)
        self.last_start: float | None = None  # monotonic time the last utterance's audio began

    @property
    def synthesizer(self) -> Synthesizer:
        return self._synth

    @property
    def speaking(self) -> bool:
        return self._current is not None

    def set_options(self, options: VoiceOptions) -> None:
        """Rate and volume apply from the next moment of audio; the voice from the next utterance."""
        self._options = options
        self._output.setVolume(max(0.0, min(1.0, options.volume)))
        self._player.setPlaybackRate(max(0.5, min(2.5, options.rate / self._synth.base_rate)))

    def say(self, text: str, priority: Priority = Priority.NORMAL) -> None:
        text = text.strip()
        if not text:
            return
        if self._queue.push(text, priority):
            # NOW: what is playing keeps playing while the new text is rendered (a few ms), then is
            # cut off; the user hears no gap, and the first answer word comes that much sooner.
            self._generation += 1
            self._current = None
            self._waiting = False
        if self._current is None:
            self._advance()

    def stop(self) -> None:
        self._queue.clear()
        self._interrupt()
        self.idle.emit()

    def close(self) -> None:
        self.stop()
        self._synth.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    # ------------------------------------------------------------ internals
    def _interrupt(self) -> None:
        self._generation += 1
        self._current = None
        self._waiting = False
        self._player.stop()
        self._player.setSource(QUrl())
        self._discard_files()

    def _discard_files(self, keep: Path | None = None) -> None:
        """Delete played utterances (on Windows a file still open is retried next time)."""
        for path in [p for p in self._files if p != keep]:
            try:
                path.unlink(missing_ok=True)
                self._files.remove(path)
            except OSError:
                pass

    def _advance(self) -> None:
        self._current = self._queue.pop()
        if self._current is None:
            self.idle.emit()
            return
        self._waiting = True
        generation, future = self._generation, self._synth.render(self._current, self._options.voice)
        future.add_done_callback(lambda f: self._rendered.emit(generation, f.exception() or f.result()))

    def _on_rendered(self, generation: int, result: object) -> None:
        if generation != self._generation or not self._waiting:
            return  # stopped or interrupted meanwhile
        self._waiting = False
        if isinstance(result, BaseException):
            log.warning("speech synthesis failed: %r", result)
            self._player.stop()
            self._advance()
            return
        self._counter += 1
        path = self._dir / f"utterance-{self._counter}.wav"
        path.write_bytes(result)
        self._files.append(path)
        self._player.stop()  # whatever an urgent utterance interrupts stops only now
        self._player.setSource(QUrl.fromLocalFile(str(path)))
        self._discard_files(keep=path)
        self._player.play()

    def _on_state(self, state) -> None:  # noqa: ANN001
        from PySide6.QtMultimedia import QMediaPlayer

        if state == QMediaPlayer.PlaybackState.PlayingState and self._current is not None:
            self.last_start = time.monotonic()
            self.started.emit(self._current)

    def _on_status(self, status) -> None:  # noqa: ANN001
        from PySide6.QtMultimedia import QMediaPlayer

        if status == QMediaPlayer.MediaStatus.EndOfMedia and self._current is not None and not self._waiting:
            self._advance()

    def _on_error(self, error, message: str = "") -> None:  # noqa: ANN001
        log.warning("speech playback error: %s %s", error, message)
        if self._current is not None and not self._waiting:
            QTimer.singleShot(0, self._advance)
