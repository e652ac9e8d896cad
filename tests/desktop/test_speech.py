"""Real speech: pyttsx3 (espeak-ng) renders WAVs in its own thread, QtMultimedia plays and stops them."""

from __future__ import annotations

import io
import time
import wave

import numpy as np
import pytest

from desktop.speech import Priority, VoiceOptions
from desktop.speech_output.voice import SpeechQueue, Synthesizer, VoiceSpeaker

ANSWER = "The screen shows a text editor with a letter to the bank. A save dialog is open in front of it."


def test_priority_queue_now_next_normal() -> None:
    q = SpeechQueue()
    assert not q.push("a", Priority.NORMAL) and not q.push("b", Priority.NORMAL)
    assert not q.push("urgent-ish", Priority.NEXT)
    assert [q.pop(), q.pop(), q.pop(), q.pop()] == ["urgent-ish", "a", "b", None]
    q.push("a", Priority.NORMAL)
    assert q.push("stop everything", Priority.NOW)  # interrupts and clears
    assert [q.pop(), q.pop()] == ["stop everything", None]


@pytest.fixture(scope="module")
def synth():
    s = Synthesizer()
    yield s
    s.close()


@pytest.fixture
def speakers(qtbot, synth):  # noqa: ANN001
    """VoiceSpeakers on the shared synthesizer, silenced and deleted before the next test runs."""
    made: list[VoiceSpeaker] = []

    def make(options: VoiceOptions) -> VoiceSpeaker:
        speaker = VoiceSpeaker(options, synthesizer=synth)
        made.append(speaker)
        return speaker

    yield make
    for speaker in made:
        speaker.stop()
        speaker.deleteLater()
    qtbot.wait(50)


def samples(wav_bytes: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768, w.getframerate()


def test_pyttsx3_renders_a_real_non_silent_wav_of_an_answer(synth) -> None:
    for _ in range(3):  # every render, not just a lucky one (pyttsx3 2.99 drops some: we retry)
        data, rate = samples(synth.render(ANSWER).result(30))
        seconds = len(data) / rate
        rms = float(np.sqrt(np.mean(data**2)))
        assert 3.0 < seconds < 20.0, seconds
        assert rms > 0.02 and np.abs(data).max() > 0.2, rms
    assert synth.voices(), "espeak-ng lists its voices"
    assert not list(synth._dir.iterdir())  # nothing left on disk


def test_rate_and_volume_apply_at_playback(qtbot, speakers) -> None:  # noqa: ANN001
    durations = {}
    for rate in (200, 400):
        speaker = speakers(VoiceOptions(rate=rate, volume=0.3))
        assert abs(speaker._output.volume() - 0.3) < 0.01
        with qtbot.waitSignal(speaker.started, timeout=10000):
            speaker.say("One two three four five six seven eight nine ten.")
        t0 = time.monotonic()
        with qtbot.waitSignal(speaker.idle, timeout=10000):
            pass
        durations[rate] = time.monotonic() - t0
    assert durations[400] < durations[200] * 0.7, durations


def test_stop_interrupts_playback_within_200_ms(qtbot, speakers) -> None:  # noqa: ANN001
    from PySide6.QtMultimedia import QMediaPlayer

    speaker = speakers(VoiceOptions(rate=170))
    started: list[str] = []
    speaker.started.connect(started.append)
    speaker.say(ANSWER)
    speaker.say("This second sentence must never be heard.")
    qtbot.waitUntil(lambda: started == [ANSWER], timeout=10000)
    qtbot.wait(400)  # mid-sentence (the sentence lasts several seconds)
    assert speaker._player.playbackState() == QMediaPlayer.PlaybackState.PlayingState
    t0 = time.monotonic()
    speaker.stop()
    qtbot.waitUntil(lambda: speaker._player.playbackState() == QMediaPlayer.PlaybackState.StoppedState, timeout=200)
    assert time.monotonic() - t0 < 0.2
    assert not speaker.speaking
    qtbot.wait(500)
    assert started == [ANSWER]  # the queued sentence was dropped


def test_sentences_play_in_order_and_now_interrupts(qtbot, speakers) -> None:  # noqa: ANN001
    speaker = speakers(VoiceOptions(rate=450))
    started: list[str] = []
    speaker.started.connect(started.append)
    speaker.say("One.")
    speaker.say("Two.")
    qtbot.waitUntil(lambda: started == ["One.", "Two."], timeout=10000)
    with qtbot.waitSignal(speaker.idle, timeout=10000):
        pass
    speaker.say("A long sentence that will be cut off by something more urgent, like a new request.")
    qtbot.waitUntil(lambda: len(started) == 3, timeout=10000)
    speaker.say("Describing screen", Priority.NOW)
    qtbot.waitUntil(lambda: started[-1] == "Describing screen", timeout=10000)


STRESS = r'''
import os, random, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop.speech import Priority, VoiceOptions
from desktop.speech_output.voice import Synthesizer, VoiceSpeaker

app = QApplication([])
synth = Synthesizer()
speaker = VoiceSpeaker(VoiceOptions(), synthesizer=synth)
random.seed(1)
count = {"n": 0}

def cycle():
    count["n"] += 1
    if count["n"] > 80:
        speaker.close()
        print("survived", flush=True)
        os._exit(0)  # only the no-hang property is under test here, not interpreter teardown
    if random.random() < 0.5:
        speaker.stop()
    speaker.say(f"Sentence number {count['n']} is being read aloud now.", Priority.NOW)
    QTimer.singleShot(random.randint(0, 120), cycle)

QTimer.singleShot(0, cycle)
app.exec()
'''


def test_rapid_say_and_stop_never_hangs_the_player(tmp_path) -> None:
    """Regression: stop() racing a loading QMediaPlayer deadlocked with in-memory (QIODevice)
    sources. Run in a subprocess so that a hang fails this test instead of freezing the suite."""
    import os
    import subprocess
    import sys

    script = tmp_path / "stress.py"
    script.write_text(STRESS)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr[-2000:]
