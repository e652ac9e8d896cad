"""Spoken questions made at test time: espeak-ng speech resampled with sox, as WAV bytes in memory."""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess
import wave

import numpy as np
import pytest

import tests.native_preload  # noqa: F401 - see its docstring

# Questions the bundled Whisper tiny.en transcribes exactly from espeak-ng's voice at 150 wpm
# (it mishears others, e.g. "read the error message" -> "We need to have a message."; see
# benchmarks/README.md).
QUESTIONS = (
    "what is on my screen",
    "describe this picture",
    "how many people are in the photo",
    "what is the title of this window",
)


def require_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (scripts/setup.sh --dev installs them)")


@functools.lru_cache(maxsize=None)
def spoken_wav(text: str, rate: int = 16_000, channels: int = 1, speed: int = 150) -> bytes:
    """``text`` spoken by espeak-ng (22.05 kHz), converted by sox to ``rate``/``channels`` 16-bit."""
    require_tools()
    raw = subprocess.run(["espeak-ng", "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True).stdout
    # -D: no dither, -R: repeatable; the same bytes on every run.
    return subprocess.run(["sox", "-D", "-R", "-t", "wav", "-", "-t", "wav", "-r", str(rate),
                           "-c", str(channels), "-b", "16", "-"], input=raw, capture_output=True,
                          check=True).stdout


def int16_samples(wav: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav)) as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), np.int16).copy()


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower().replace("dialogue", "dialog")).strip()
