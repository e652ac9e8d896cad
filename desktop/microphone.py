"""Push-to-talk recording from the default microphone, as WAV bytes in memory.

``VoiceRecorder`` is a QObject living on the GUI thread. ``press()``/``release()`` follow the
hotkey: in ``hold`` mode recording lasts while the key is held, in ``toggle`` mode one press starts
and the next stops. The audio callback (PortAudio's thread) only appends sample blocks under a
lock; every signal is emitted from the GUI thread. The finished recording is checked (too short,
silent) with the same rules the engine applies (``engine.perception.speech_recognition.check_audible``) and
emitted as 16 kHz mono 16-bit WAV bytes, ready for ``engine.protocol.Transcribe``. Nothing is
written to disk.

Failure reasons (``failed(reason)``, keys of ``VOICE_FAILURES`` in ``desktop.messages``):
``no_audio_system`` (PortAudio missing), ``no_microphone``, ``microphone_error``, ``too_short``,
``silence``.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import wave
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine.protocol import ErrorKind, Failed
from engine.perception.speech_recognition import SAMPLE_RATE, NothingHeard, check_audible

log = logging.getLogger(__name__)

MAX_SECONDS = 30.0  # a forgotten toggle stops by itself; the recording so far is used
BLOCK_FRAMES = 1600  # 0.1 s per callback
KEY_REPEAT_GRACE = 0.08  # s: a press this soon after a release is the key auto-repeating
REPEAT_WINDOW = 1.0  # s: longer than any auto-repeat delay; a lost release cannot lock the key


class RecordingMode(StrEnum):
    HOLD = "hold"
    TOGGLE = "toggle"


class MicrophoneUnavailable(RuntimeError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class InputStream(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


# A factory opens the input and arranges for ``callback(int16 mono block)`` to be called (from any
# thread) until ``stop()``; it raises ``MicrophoneUnavailable`` when there is no usable input.
StreamFactory = Callable[[Callable[[np.ndarray], None]], InputStream]


def sounddevice_stream(callback: Callable[[np.ndarray], None]) -> InputStream:
    """The default microphone through sounddevice (PortAudio), 16 kHz mono int16."""
    try:
        import sounddevice
    except OSError as exc:  # the module imports, then fails to find the PortAudio library
        raise MicrophoneUnavailable("no_audio_system", str(exc)) from exc
    except ImportError as exc:
        raise MicrophoneUnavailable("no_audio_system", str(exc)) from exc
    try:
        sounddevice.check_input_settings(samplerate=SAMPLE_RATE, channels=1, dtype="int16")
    except (sounddevice.PortAudioError, ValueError) as exc:  # no default input device, or it can't do 16 kHz
        raise MicrophoneUnavailable("no_microphone", str(exc)) from exc

    def on_audio(indata: np.ndarray, frames: int, time: object, status: object) -> None:
        if status:
            log.debug("microphone status: %s", status)
        callback(indata[:, 0].copy())

    try:
        return sounddevice.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="int16",
                                       blocksize=BLOCK_FRAMES, callback=on_audio)
    except sounddevice.PortAudioError as exc:
        raise MicrophoneUnavailable("microphone_error", str(exc)) from exc


def build_wav(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """int16 mono samples -> WAV bytes (in memory)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return buffer.getvalue()


_ENGINE_REASONS = ("too_short", "silence", "no_speech", "unintelligible")


def failure_reason(failed: Failed) -> str:
    """The reason key (``messages.VOICE_FAILURES``) for a ``Failed`` answering a ``Transcribe``,
    or ``"unavailable"`` when speech input is not installed (``messages.VOICE_UNAVAILABLE``).
    ``"model_damaged"``: the model folder exists but cannot be loaded (engine.perception.speech_recognition's words)."""
    if failed.kind is ErrorKind.UNAVAILABLE:
        if "understands English only" in failed.detail:
            return "language"
        damaged = ("cannot be loaded", "is not a CTranslate2 Whisper model directory")
        return "model_damaged" if any(words in failed.detail for words in damaged) else "unavailable"
    if "NothingHeard: " in failed.detail:  # "engine.perception.speech_recognition.NothingHeard: silence: peak ..."
        reason = failed.detail.split("NothingHeard: ", 1)[1].split(":", 1)[0].strip()
        if reason in _ENGINE_REASONS:
            return reason
    if "BadRecording" in failed.detail:
        return "bad_recording"
    return "unintelligible"


class VoiceRecorder(QObject):
    recording_started = Signal()
    recorded = Signal(bytes)  # WAV bytes, 16 kHz mono 16-bit
    failed = Signal(str)  # a reason key (see the module docstring)
    cancelled = Signal()

    def __init__(self, mode: RecordingMode = RecordingMode.HOLD,
                 stream_factory: StreamFactory = sounddevice_stream,
                 max_seconds: float = MAX_SECONDS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mode = RecordingMode(mode)
        self.stream_factory = stream_factory  # replaceable: tests feed recorded speech through it
        self._stream: InputStream | None = None
        self._blocks: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._limit = QTimer(self, singleShot=True, timeout=self.stop)
        self._limit.setInterval(int(max_seconds * 1000))
        self._release_timer = QTimer(self, singleShot=True, timeout=self._released)
        self._release_timer.setInterval(int(KEY_REPEAT_GRACE * 1000))
        self._key_down = False
        self._last_press = 0.0

    @property
    def recording(self) -> bool:
        return self._stream is not None

    # ------------------------------------------------------------ hotkey
    # A held key auto-repeats: X11 sends release+press pairs, Windows repeated presses. A release
    # counts only if no press follows within KEY_REPEAT_GRACE, and a press while the key is down
    # within REPEAT_WINDOW of the previous one is a repeat, so holding never stops a recording
    # (hold mode) or flips it on and off (toggle mode).
    def press(self) -> None:
        now = time.monotonic()
        if self._release_timer.isActive():  # the press half of an auto-repeat pair
            self._release_timer.stop()
            self._last_press = now
            return
        if self._key_down and now - self._last_press < REPEAT_WINDOW:
            self._last_press = now
            return
        self._key_down, self._last_press = True, now
        if self.mode is RecordingMode.TOGGLE and self.recording:
            self.stop()
        elif not self.recording:
            self.start()

    def release(self) -> None:
        self._release_timer.start()

    def _released(self) -> None:
        self._key_down = False
        if self.mode is RecordingMode.HOLD and self.recording:
            self.stop()

    # ------------------------------------------------------------ recording
    def start(self) -> bool:
        if self.recording:
            return True
        with self._lock:
            self._blocks = []
        try:
            stream = self.stream_factory(self._on_block)
            stream.start()
        except MicrophoneUnavailable as exc:
            log.warning("microphone unavailable: %s", exc)
            self.failed.emit(exc.reason)
            return False
        except Exception:  # noqa: BLE001 - a device error must not take the app down
            log.exception("the microphone could not be started")
            self.failed.emit("microphone_error")
            return False
        self._stream = stream
        self._limit.start()
        self.recording_started.emit()
        return True

    def stop(self) -> None:
        """End the recording and emit ``recorded(wav)`` or ``failed(reason)``."""
        samples = self._close()
        if samples is None:
            return
        try:
            check_audible(samples.astype(np.float32) / 32768.0)
        except NothingHeard as exc:
            self.failed.emit(exc.reason)
            return
        self.recorded.emit(build_wav(samples))

    def cancel(self) -> None:
        """End the recording and drop it (e.g. the stop key)."""
        if self._close() is not None:
            self.cancelled.emit()

    def _close(self) -> np.ndarray | None:
        stream, self._stream = self._stream, None
        if stream is None:
            return None
        self._limit.stop()
        try:
            stream.stop()
            stream.close()
        except Exception:  # noqa: BLE001 - the samples we have are still usable
            log.exception("closing the microphone failed")
        with self._lock:
            blocks, self._blocks = self._blocks, []
        return np.concatenate(blocks) if blocks else np.zeros(0, np.int16)

    def _on_block(self, block: np.ndarray) -> None:  # any thread
        with self._lock:
            self._blocks.append(np.asarray(block, dtype=np.int16).reshape(-1))
