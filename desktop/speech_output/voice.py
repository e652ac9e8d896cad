"""Lumen's own voice: one priority queue, synthesis into memory, playback through QAudioSink.

Each utterance is rendered to PCM in memory by the OS's driver (``voice_drivers``: espeak-ng,
SAPI5, AVSpeechSynthesizer), at the rate the user chose, and played from a ``QBuffer`` through
``QAudioSink``, whose ``stop()`` silences it at once. No audio file exists at any time.
(QMediaPlayer is not used for speech: its ``stop()`` on a playing file deadlocked about one run in
ten inside Qt's FFmpeg media plugin, ``QObject::disconnect``, with PySide6 6.10 to 6.12.)

The queue follows NVDA's ``SpeechPriority``: NOW interrupts and clears, NEXT goes before NORMAL,
NORMAL waits its turn. All decisions happen on the GUI thread.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QTimer, Signal

from desktop.speech_output.speaker import Priority, Speaker, VoiceOptions
from desktop.speech_output.voice_drivers import AVSpeechVoice, EspeakVoice, Pcm, SapiVoice

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

    def clear(self) -> None:
        self._next.clear()
        self._normal.clear()

    def __len__(self) -> int:
        return len(self._next) + len(self._normal)


class Synthesizer:
    """Runs a blocking driver (espeak-ng, SAPI5) in one thread of its own, where it is created
    (espeak-ng is not thread-safe; COM objects live in their thread's apartment);
    ``render(text, voice, rate)`` returns a Future of ``Pcm``."""

    def __init__(self, driver: Callable[[], object] | None = None) -> None:
        self._factory = driver or (SapiVoice if sys.platform == "win32" else EspeakVoice)
        try:
            getattr(self._factory, "load", lambda: None)()  # native libraries: here, not in the thread
        except Exception as exc:  # noqa: BLE001 - the thread reports it when it creates the driver
            log.debug("speech driver not loaded: %r", exc)
        self._jobs: queue.Queue[tuple[str, str, int, Future[Pcm]] | None] = queue.Queue()
        self._voices: Future[list[tuple[str, str]]] = Future()
        self._thread = threading.Thread(target=self._run, name="lumen-tts", daemon=True)
        self._thread.start()

    def render(self, text: str, voice: str = "", rate: int = 200) -> Future[Pcm]:
        future: Future[Pcm] = Future()
        self._jobs.put((text, voice, rate, future))
        return future

    def voices(self, timeout: float = 5.0) -> list[tuple[str, str]]:
        """(id, name) of every installed voice."""
        return self._voices.result(timeout)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(5.0)

    def _run(self) -> None:
        try:
            driver = self._factory()
            self._voices.set_result(driver.voices())
        except Exception as exc:  # noqa: BLE001 - no TTS: every render fails with this reason
            log.error("text to speech unavailable: %r", exc)
            self._voices.set_exception(exc)
            driver = None
        while (job := self._jobs.get()) is not None:
            text, voice, rate, future = job
            if not future.set_running_or_notify_cancel():
                continue
            if driver is None:
                future.set_exception(RuntimeError("text to speech unavailable"))
                continue
            try:
                future.set_result(driver.render(text, voice, rate))
            except Exception as exc:  # noqa: BLE001 - reported to the caller through the future
                future.set_exception(exc)
        if driver is not None:
            driver.close()


def make_synthesizer():  # noqa: ANN201 - a Synthesizer, or the macOS main-thread one
    """The own voice's synthesizer for this OS (never raises: a synthesizer that cannot start makes
    every utterance fail with its reason, logged, and the app goes on)."""
    if sys.platform == "darwin":
        try:
            return AVSpeechVoice()
        except Exception as exc:  # noqa: BLE001 - no pyobjc AVFoundation: espeak-ng, if installed
            log.error("AVSpeechSynthesizer unavailable: %r", exc)
    return Synthesizer()


class VoiceSpeaker(Speaker):
    """The own voice: rendered in memory, played by QAudioSink so that ``stop`` cuts it off at once."""

    _rendered = Signal(int, object)  # (generation, Pcm or exception), from the synthesis thread

    def __init__(self, options: VoiceOptions | None = None, synthesizer=None) -> None:  # noqa: ANN001
        super().__init__()
        self._options = options or VoiceOptions()
        self._synth = synthesizer or make_synthesizer()
        self._queue = SpeechQueue()
        self._generation = 0
        self._current: str | None = None
        self._waiting = False  # a render for the current utterance is in flight
        self._sink = None  # QAudioSink, made again when the audio format changes
        self._sink_format: tuple[int, int, str] | None = None
        self._buffer: QBuffer | None = None  # what the sink plays: the current utterance, in memory
        self._seconds = 0.0  # its length
        self._announced = False  # ``started`` was emitted for the current utterance
        self._rendered.connect(self._on_rendered)
        self.last_start: float | None = None  # monotonic time the last utterance's audio began

    @property
    def synthesizer(self):  # noqa: ANN201
        return self._synth

    @property
    def speaking(self) -> bool:
        return self._current is not None

    def set_options(self, options: VoiceOptions) -> None:
        """Volume applies at once; voice and rate from the next utterance (they are synthesised)."""
        self._options = options
        if self._sink is not None:
            self._sink.setVolume(self._volume())

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
        self._generation += 1
        self._current = None
        self._waiting = False
        self._silence()
        self.idle.emit()

    def close(self) -> None:
        self.stop()
        self._synth.close()

    # ------------------------------------------------------------ internals
    def _volume(self) -> float:
        return max(0.0, min(1.0, self._options.volume))

    def _silence(self) -> None:
        if self._sink is not None:
            self._sink.reset()  # drop what the sound server still holds, then detach
            self._sink.stop()
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None

    def _advance(self) -> None:
        self._current = self._queue.pop()
        if self._current is None:
            self._silence()
            self.idle.emit()
            return
        self._waiting = True
        generation = self._generation
        try:
            future = self._synth.render(self._current, self._options.voice, self._options.rate)
        except Exception as exc:  # noqa: BLE001 - a driver refusing at once is a failed render
            future = Future()
            future.set_exception(exc)

        def done(f: Future[Pcm]) -> None:  # in the synthesis thread: the signal takes it to the GUI thread
            try:
                result: object = f.result()
            except BaseException as exc:  # noqa: BLE001 - a cancelled render too
                result = exc
            self._rendered.emit(generation, result)

        future.add_done_callback(done)

    def _on_rendered(self, generation: int, result: object) -> None:
        if generation != self._generation or not self._waiting:
            return  # stopped or interrupted meanwhile
        self._waiting = False
        if isinstance(result, BaseException):
            log.warning("speech synthesis failed: %r", result)
            self._advance()
            return
        self._play(result)

    def _play(self, pcm: Pcm) -> None:
        from PySide6.QtMultimedia import QAudioFormat, QAudioSink, QMediaDevices

        self._silence()  # whatever an urgent utterance interrupts stops only now
        key = (pcm.sample_rate, pcm.channels, pcm.sample_format)
        if self._sink is None or key != self._sink_format:
            if self._sink is not None:
                self._sink.deleteLater()
            fmt = QAudioFormat()
            fmt.setSampleRate(pcm.sample_rate)
            fmt.setChannelCount(pcm.channels)
            fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16 if pcm.sample_format == "int16"
                                else QAudioFormat.SampleFormat.Float)
            self._sink = QAudioSink(QMediaDevices.defaultAudioOutput(), fmt, self)
            self._sink.setVolume(self._volume())
            # No argument: PySide6 6.11 cannot convert QAudio::State for a slot that takes it.
            self._sink.stateChanged.connect(self._on_state)
            self._sink_format = key
        self._buffer = QBuffer(self)
        self._buffer.setData(QByteArray(pcm.data))
        self._buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        self._seconds, self._announced = pcm.seconds, False
        self._sink.start(self._buffer)
        self._on_state()  # a sink that cannot open says so synchronously, or not at all

    def _on_state(self) -> None:
        from PySide6.QtMultimedia import QtAudio as QAudio  # (QAudio.State is another, unequal enum in 6.11)

        sink = self._sink
        if sink is None or self._current is None or self._waiting or self._buffer is None:
            return
        state = sink.state()
        if state == QAudio.State.ActiveState and not self._announced:
            self._announced = True
            self.last_start = time.monotonic()
            self.started.emit(self._current)
        elif state == QAudio.State.IdleState and self._buffer.atEnd():  # played to the end
            QTimer.singleShot(0, self._finished(self._buffer))
        elif state == QAudio.State.StoppedState and sink.error() != QAudio.Error.NoError:
            log.warning("speech playback error: %s", sink.error())  # e.g. no sound output: go on silently
            QTimer.singleShot(0, self._finished(self._buffer))

    def _finished(self, buffer: QBuffer) -> Callable[[], None]:
        """The next utterance, unless this one was stopped or replaced meanwhile."""
        def advance() -> None:
            if buffer is self._buffer and not self._waiting:
                self._advance()
        return advance
