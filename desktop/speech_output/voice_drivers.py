"""Lumen's own voice per OS: each driver renders one utterance into memory as PCM, nothing on disk.

One small interface: ``render(text, voice, rate) -> Pcm`` (the samples and their format) and
``voices() -> [(id, name)]``. ``rate`` is in words per minute (the setting) and is applied by the
synthesizer itself; volume is applied at playback (``QAudioSink.setVolume``).

- Linux: espeak-ng through pyttsx3's ctypes binding (``pyttsx3.drivers._espeak``) in synchronous
  mode: ``espeak_Synth`` returns once its callback has handed over every sample. Runs in the
  synthesis thread (``voice.Synthesizer``).
- Windows: SAPI5 through comtypes, speaking into an ``SpMemoryStream`` of a fixed format (22 kHz,
  16 bit, mono); ``Speak`` is synchronous, so no sleep or polling. Runs in the synthesis thread.
- macOS: ``AVSpeechSynthesizer.writeUtterance:toBufferCallback:`` collects the PCM buffers; driven
  from the main thread (Qt's main loop runs the Cocoa run loop), never from a worker thread
  (pyttsx3's nsss driver hangs there). Asynchronous, so it returns a Future (``AVSpeechVoice``).
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pcm:
    """Interleaved samples in memory: ``int16`` (little-endian) or ``float32``."""

    data: bytes
    sample_rate: int
    channels: int = 1
    sample_format: str = "int16"

    @property
    def seconds(self) -> float:
        width = 2 if self.sample_format == "int16" else 4
        return len(self.data) / (width * self.channels * self.sample_rate)


class NoAudio(RuntimeError):
    """The synthesizer produced no samples for this text."""


def driver_name(platform: str = sys.platform) -> str:
    """The own voice's driver on this OS, in words (``lumen --check``, Settings)."""
    if platform == "win32":
        return "SAPI5 voices (in memory)"
    if platform == "darwin":
        return "AVSpeechSynthesizer, the macOS voices (in memory)"
    return "espeak-ng (in memory)"


# ------------------------------------------------------------------ Linux: espeak-ng
_ESPEAK_LOCK = threading.Lock()  # espeak-ng is one global engine per process, not thread-safe
_espeak_rate: int | None = None  # its sample rate once initialised (it can be initialised only once)


class EspeakVoice:
    name = driver_name("linux")

    @staticmethod
    def load() -> None:
        """Load the library and resolve its symbols in the calling (GUI) thread, not the synthesis
        thread: ctypes resolves symbols holding the GIL, and when the GUI thread meanwhile dlopens a Qt
        plugin that logs through a Python message handler, the loader lock and the GIL deadlock (seen
        with py-spy: "lumen-tts" in PyCFuncPtr_FromDll, the GUI thread in dlopen of QtMultimedia)."""
        from pyttsx3.drivers import _espeak  # noqa: F401 - the ctypes binding pyttsx3 ships

    def __init__(self) -> None:
        global _espeak_rate  # noqa: PLW0603
        from pyttsx3.drivers import _espeak  # raises without espeak-ng

        self._e = _espeak
        with _ESPEAK_LOCK:
            if _espeak_rate is None:
                rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 0)
                if rate <= 0:
                    raise RuntimeError("espeak-ng could not be initialised")
                _espeak_rate = rate
            current = _espeak.GetCurrentVoice()
            self._default = current.contents.identifier.decode() if current and current.contents.identifier else "en"
        self.sample_rate = _espeak_rate
        self._chunks: list[bytes] = []
        self._callback = _espeak.t_espeak_callback(self._collect)  # kept alive as long as the driver

    def _collect(self, wav, count: int, events) -> int:  # noqa: ANN001 - ctypes pointers
        if count > 0:
            self._chunks.append(ctypes.string_at(wav, 2 * count))
        return 0  # 0: go on

    def voices(self) -> list[tuple[str, str]]:
        with _ESPEAK_LOCK:
            return [(v.identifier.decode().lower(), v.name.decode()) for v in self._e.ListVoices(None)]

    def render(self, text: str, voice: str, rate: int) -> Pcm:
        e = self._e
        with _ESPEAK_LOCK:
            e.cSetSynthCallback(self._callback)
            if e.SetVoiceByName((voice or self._default).encode()) != e.EE_OK:
                log.warning("espeak-ng has no voice %r; the default speaks", voice)
                e.SetVoiceByName(self._default.encode())
            e.SetParameter(e.RATE, int(rate), 0)  # words per minute, exactly (after the voice: it resets it)
            self._chunks = []
            if e.Synth(text.encode(), flags=e.ENDPAUSE | e.CHARS_UTF8) != e.EE_OK:
                raise RuntimeError("espeak-ng refused the text")
            data, self._chunks = b"".join(self._chunks), []
        if not data:
            raise NoAudio("synthesis produced no audio")
        return Pcm(data, self.sample_rate)

    def close(self) -> None:
        pass
