"""Regenerate Lumen's earcons (short, soft, distinct by pitch direction). Run: python resources/sounds/generate.py"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 22050


def tone(freqs: list[float], seconds: float, volume: float = 0.35, harmonics: float = 0.15) -> np.ndarray:
    """A glide through ``freqs`` with a smooth attack/release (no clicks)."""
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    freq = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(freqs)), freqs)
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    wave_ = np.sin(phase) + harmonics * np.sin(2 * phase)
    envelope = np.minimum(1.0, t / 0.008) * np.minimum(1.0, (seconds - t) / 0.03)
    return volume * wave_ * np.clip(envelope, 0, 1) / (1 + harmonics)


SOUNDS = {
    "ack": lambda: np.concatenate([tone([660], 0.045), tone([990], 0.055)]),  # rising: "got it"
    "done": lambda: np.concatenate([tone([990], 0.06), tone([660], 0.09)]),  # falling: finished
    "error": lambda: tone([300, 220], 0.22, volume=0.3, harmonics=0.5),  # low, rough
    "stopped": lambda: tone([520, 440], 0.08, volume=0.3),  # short drop
    "waiting": lambda: tone([1200], 0.03, volume=0.12),  # soft tick, repeated while waiting
}


def write(path: Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())


if __name__ == "__main__":
    here = Path(__file__).parent
    for name, make in SOUNDS.items():
        write(here / f"{name}.wav", make())
