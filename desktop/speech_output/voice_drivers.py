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
import math
import sys
import threading
from collections import deque
from concurrent.futures import Future
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


def driver_problem(platform: str = sys.platform) -> str | None:
    """Why the own voice cannot speak on this OS, in words, or None (``lumen --check``)."""
    import importlib.util

    if platform == "win32":
        return None if importlib.util.find_spec("comtypes") else "comtypes is not installed (SAPI5 needs it)."
    if platform == "darwin":
        return None if importlib.util.find_spec("AVFoundation") else "pyobjc's AVFoundation is not installed."
    try:
        EspeakVoice.load()
    except Exception:  # noqa: BLE001 - pyttsx3's binding raises when no libespeak-ng is found
        return "No speech synthesizer found. Install espeak-ng."
    return None


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


# ------------------------------------------------------------------ Windows: SAPI5
SAFT22kHz16BitMono = 22  # SpeechAudioFormatType
SVSFIsNotXML = 16  # SpeechVoiceSpeakFlags: the text is plain text (an answer may contain "<"), synchronous
SAPI_WPM_AT_0, SAPI_STEP = 156.63, 1.11  # pyttsx3's measured rate curve: wpm = 156.63 * 1.11 ** Rate


def sapi_rate(wpm: int) -> int:
    """SAPI's Rate (-10..10) for words per minute."""
    return max(-10, min(10, round(math.log(wpm / SAPI_WPM_AT_0, SAPI_STEP))))


class SapiVoice:
    name = driver_name("win32")

    @staticmethod
    def load() -> None:
        """Import comtypes in the calling thread (see ``EspeakVoice.load``)."""
        import comtypes.client  # noqa: F401

    def __init__(self, create=None, co_initialize=None) -> None:  # noqa: ANN001 - comtypes' by default
        if create is None:
            import comtypes
            import comtypes.client

            create, co_initialize = comtypes.client.CreateObject, comtypes.CoInitialize
        if co_initialize is not None:
            co_initialize()  # this (the synthesis) thread's COM apartment
        self._create = create
        self._voice = create("SAPI.SpVoice")
        self._voice.Volume = 100  # the volume setting is applied at playback
        self._default = self._voice.Voice
        self._format = create("SAPI.SpAudioFormat")
        self._format.Type = SAFT22kHz16BitMono

    def _tokens(self) -> list:
        tokens = self._voice.GetVoices()
        return [tokens.Item(i) for i in range(tokens.Count)]

    def voices(self) -> list[tuple[str, str]]:
        return [(t.Id, t.GetDescription()) for t in self._tokens()]

    def render(self, text: str, voice: str, rate: int) -> Pcm:
        token = next((t for t in self._tokens() if t.Id == voice), None) if voice else None
        if voice and token is None:
            log.warning("SAPI has no voice %r; the default speaks", voice)
        self._voice.Voice = token or self._default
        self._voice.Rate = sapi_rate(rate)
        stream = self._create("SAPI.SpMemoryStream")  # a fresh one per utterance: it only grows
        stream.Format = self._format
        self._voice.AudioOutputStream = stream
        self._voice.Speak(text, SVSFIsNotXML)  # synchronous: returns when the stream holds it all
        data = bytes(stream.GetData())
        if not data:
            raise NoAudio("synthesis produced no audio")
        return Pcm(data, 22050)

    def close(self) -> None:
        self._voice = None


# ------------------------------------------------------------------ macOS: AVSpeechSynthesizer
AVAudioPCMFormatFloat32, AVAudioPCMFormatInt16 = 1, 3  # AVAudioCommonFormat
WPM_AT_DEFAULT_RATE = 200  # AVSpeechUtteranceDefaultSpeechRate is about 200 words per minute


def avspeech_rate(wpm: int, av) -> float:  # noqa: ANN001 - the AVFoundation module
    rate = av.AVSpeechUtteranceDefaultSpeechRate * wpm / WPM_AT_DEFAULT_RATE
    return max(av.AVSpeechUtteranceMinimumSpeechRate, min(av.AVSpeechUtteranceMaximumSpeechRate, rate))


class AVSpeechVoice:
    """A synthesizer (``render`` returns a Future of Pcm) for the main thread; one utterance at a time."""

    name = driver_name("darwin")

    def __init__(self, avfoundation=None, main_queue=None) -> None:  # noqa: ANN001 - pyobjc's by default
        if avfoundation is None:
            import AVFoundation as avfoundation  # noqa: N813 - pyobjc-framework-AVFoundation
            from Foundation import NSOperationQueue

            main_queue = NSOperationQueue.mainQueue()
        self._av, self._main_queue = avfoundation, main_queue
        self._synth = avfoundation.AVSpeechSynthesizer.alloc().init()
        self._jobs: deque[tuple[object, Future[Pcm]]] = deque()
        self._busy = False

    def voices(self, timeout: float = 0.0) -> list[tuple[str, str]]:
        return [(v.identifier(), v.name()) for v in self._av.AVSpeechSynthesisVoice.speechVoices()]

    def render(self, text: str, voice: str = "", rate: int = WPM_AT_DEFAULT_RATE) -> Future[Pcm]:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("AVSpeechSynthesizer is driven from the main thread only")
        av, future = self._av, Future()
        utterance = av.AVSpeechUtterance.speechUtteranceWithString_(text)
        utterance.setRate_(avspeech_rate(rate, av))
        chosen = av.AVSpeechSynthesisVoice.voiceWithIdentifier_(voice) if voice else None
        if voice and chosen is None:
            log.warning("macOS has no voice %r; the default speaks", voice)
        if chosen is not None:
            utterance.setVoice_(chosen)
        self._jobs.append((utterance, future))
        self._next()
        return future

    def _next(self) -> None:
        if self._busy or not self._jobs:
            return
        self._busy = True
        utterance, future = self._jobs.popleft()
        chunks: list[bytes] = []
        shape: list[tuple[int, str]] = []

        def on_buffer(buffer) -> None:  # noqa: ANN001 - an AVAudioPCMBuffer; an empty one ends the utterance
            frames = buffer.frameLength() if hasattr(buffer, "frameLength") else 0
            if frames:
                fmt = buffer.format()
                if fmt.commonFormat() == AVAudioPCMFormatInt16:
                    chunks.append(bytes(buffer.int16ChannelData()[0].as_buffer(frames)))
                    shape[:] = [(int(fmt.sampleRate()), "int16")]
                else:
                    chunks.append(bytes(buffer.floatChannelData()[0].as_buffer(frames)))
                    shape[:] = [(int(fmt.sampleRate()), "float32")]
                return  # channel 0 only: the voices are mono
            if chunks:
                future.set_result(Pcm(b"".join(chunks), shape[0][0], 1, shape[0][1]))
            else:
                future.set_exception(NoAudio("synthesis produced no audio"))
            self._busy = False
            # The buffers may arrive on AVFoundation's own queue: the next utterance starts on the main thread.
            if threading.current_thread() is threading.main_thread():
                self._next()
            else:
                self._main_queue.addOperationWithBlock_(self._next)

        self._synth.writeUtterance_toBufferCallback_(utterance, on_buffer)

    def close(self) -> None:
        self._synth.stopSpeakingAtBoundary_(0)  # AVSpeechBoundaryImmediate
        for _utterance, future in self._jobs:
            future.cancel()
        self._jobs.clear()
