"""desktop.microphone: the push-to-talk recorder, fed like a microphone, through to the recogniser."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from desktop import messages
from desktop.microphone import (BLOCK_FRAMES, MicrophoneUnavailable, RecordingMode, VoiceRecorder,
                                 sounddevice_stream)
from engine.perception import speech_recognition
from tests.speech_samples import QUESTIONS, int16_samples, normalise, spoken_wav


class FakeMicrophone:
    """A stream factory standing in for PortAudio: on start, a thread delivers ``samples`` to the
    recorder's callback in 0.1 s blocks, as sounddevice's callback thread does."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = samples
        self.delivered = threading.Event()
        self.closed = False

    def __call__(self, callback):  # noqa: ANN001, ANN204
        mic = self

        class Stream:
            def start(self) -> None:
                def run() -> None:
                    for start in range(0, len(mic.samples), BLOCK_FRAMES):
                        callback(mic.samples[start:start + BLOCK_FRAMES])
                    mic.delivered.set()
                threading.Thread(target=run, daemon=True).start()

            def stop(self) -> None:
                mic.delivered.wait(5)

            def close(self) -> None:
                mic.closed = True

        return Stream()


@pytest.fixture(scope="session")
def recognizer() -> speech_recognition.Recognizer:
    try:
        return speech_recognition.get_recognizer()
    except speech_recognition.SpeechInputUnavailable as exc:
        pytest.skip(f"voice extra not installed: {exc}")


def _record(qtbot, recorder: VoiceRecorder) -> bytes:  # noqa: ANN001
    with qtbot.waitSignal(recorder.recording_started, timeout=2000):
        recorder.press()
    assert recorder.recording
    with qtbot.waitSignal(recorder.recorded, timeout=5000) as blocker:
        recorder.release()
        if recorder.mode is RecordingMode.TOGGLE:  # tap once to start, once more to stop
            qtbot.wait(150)
            assert recorder.recording
            recorder.press()
            recorder.release()
    assert not recorder.recording
    return blocker.args[0]


@pytest.mark.parametrize("mode", list(RecordingMode))
@pytest.mark.system
def test_a_spoken_question_goes_from_microphone_to_text(qtbot, mode, recognizer) -> None:
    question = QUESTIONS[3] if mode is RecordingMode.HOLD else QUESTIONS[1]
    samples = int16_samples(spoken_wav(question))
    mic = FakeMicrophone(samples)
    wav = _record(qtbot, VoiceRecorder(mode, stream_factory=mic))
    assert mic.closed
    np.testing.assert_array_equal(int16_samples(wav), samples)  # nothing lost or reordered
    assert normalise(speech_recognition.transcribe(wav, "en")) == question


def test_silence_and_a_tap_fail_with_a_reason(qtbot) -> None:
    for samples, reason in ((np.zeros(32_000, np.int16), "silence"), (np.full(1600, 9000, np.int16), "too_short")):
        recorder = VoiceRecorder(stream_factory=FakeMicrophone(samples))
        recorder.press()
        with qtbot.waitSignal(recorder.failed, timeout=3000) as blocker:
            recorder.release()
        assert blocker.args == [reason]


def test_a_forgotten_toggle_stops_by_itself(qtbot) -> None:
    samples = int16_samples(spoken_wav(QUESTIONS[0]))
    recorder = VoiceRecorder(RecordingMode.TOGGLE, stream_factory=FakeMicrophone(samples), max_seconds=0.3)
    with qtbot.waitSignal(recorder.recorded, timeout=5000):
        recorder.press()
    assert not recorder.recording


def test_cancel_drops_the_recording(qtbot) -> None:
    recorder = VoiceRecorder(stream_factory=FakeMicrophone(int16_samples(spoken_wav(QUESTIONS[0]))))
    recorder.recorded.connect(lambda wav: pytest.fail("a cancelled recording was emitted"))
    recorder.press()
    with qtbot.waitSignal(recorder.cancelled, timeout=2000):
        recorder.cancel()
    recorder.release()  # releasing the key afterwards does nothing
    assert not recorder.recording


def test_no_microphone_on_this_machine_is_reported(qtbot) -> None:
    # The test machines have no sound card: the real sounddevice path must say so, not crash.
    try:
        stream = sounddevice_stream(lambda block: None)
    except MicrophoneUnavailable as exc:
        assert exc.reason in ("no_microphone", "no_audio_system")
    else:
        stream.close()
        pytest.skip("this machine has a microphone")
    recorder = VoiceRecorder()
    with qtbot.waitSignal(recorder.failed, timeout=2000) as blocker:
        recorder.press()
    assert blocker.args[0] in ("no_microphone", "no_audio_system")
    assert not recorder.recording


def test_missing_portaudio_is_no_audio_system(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(MicrophoneUnavailable) as info:
        sounddevice_stream(lambda block: None)
    assert info.value.reason == "no_audio_system"


def test_a_device_error_on_start_is_a_failure_not_a_crash(qtbot) -> None:
    def broken(callback):  # noqa: ANN001, ANN202
        raise OSError("device unplugged")

    recorder = VoiceRecorder(stream_factory=broken)
    with qtbot.waitSignal(recorder.failed, timeout=2000) as blocker:
        assert recorder.start() is False
    assert blocker.args == ["microphone_error"]


def test_every_failure_reason_has_words() -> None:
    reasons = {"no_audio_system", "no_microphone", "microphone_error", "too_short", "silence",
               "no_speech", "unintelligible", "bad_recording"}
    assert reasons <= set(messages.VOICE_FAILURES)
    for reason in reasons:
        assert messages.voice_failure_text(reason) and "_" not in messages.voice_failure_text(reason)


@pytest.mark.parametrize("style", ["x11", "windows"])
@pytest.mark.parametrize("mode", list(RecordingMode))
def test_a_held_key_auto_repeating_does_not_stop_or_flip_the_recording(qtbot, mode, style) -> None:
    recorder = VoiceRecorder(mode, stream_factory=FakeMicrophone(int16_samples(spoken_wav(QUESTIONS[0]))))
    recorder.recorded.connect(lambda wav: pytest.fail("stopped by auto-repeat"))
    recorder.press()
    for _ in range(5):  # X11: release+press pairs; Windows: presses only
        if style == "x11":
            recorder.release()
        recorder.press()
        qtbot.wait(20)
    qtbot.wait(150)
    assert recorder.recording
    recorder.recorded.disconnect()
    with qtbot.waitSignal(recorder.recorded, timeout=3000):
        recorder.release()  # the real release
        if mode is RecordingMode.TOGGLE:
            qtbot.wait(150)
            recorder.press()  # a second, separate press stops a toggle
    assert not recorder.recording
