"""Spoken questions and screen text end to end: the app as built by ``desktop.app.build`` (with the
``desktop.integrations`` wiring), the real engine worker in a thread, the tiny MiniGPT-4, real OCR
and the bundled Whisper model. Only the microphone and the screen are replaced:

fake microphone -> VoiceRecorder -> Transcribe -> worker (engine.perception.speech_recognition) -> Transcribed ->
AssistantController.ask -> Describe follow-up -> the image embeddings cached by the first answer,
grounded in the capture's OCR text (ReadText -> worker (engine.perception.ocr) -> TextRead).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from desktop import messages
from desktop.microphone import build_wav
from engine.perception import speech_recognition
from engine.protocol import Describe, Failed, LoadModel, ModelReady, ReadText, Transcribe
from engine.worker import serve
from tests import ocr_screens
from tests.desktop.conftest import build_app
from tests.desktop.test_microphone import FakeMicrophone
from tests.speech_samples import QUESTIONS, int16_samples, normalise, spoken_wav


@pytest.fixture
def lumen(qtbot, tmp_path):  # noqa: ANN001
    lumen = build_app(qtbot, tmp_path / "settings.json", serve=serve, max_new_tokens=16, ocr=True)
    lumen.controller.grabber.image = ocr_screens.save_dialog().image  # the "screen": a dialog with known text
    yield lumen
    lumen.engine.shutdown()


def _feature(lumen, name: str):  # noqa: ANN001, ANN202
    return next(f for f in lumen.extensions if type(f).__name__ == name)


@pytest.mark.system
def test_spoken_follow_up_reaches_the_engine_about_the_cached_image(qtbot, lumen, tiny_model_dir) -> None:  # noqa: ANN001
    try:
        speech_recognition.get_recognizer()
    except speech_recognition.SpeechInputUnavailable as exc:
        pytest.skip(f"voice extra not installed: {exc}")
    with qtbot.waitSignal(lumen.engine.event, timeout=60_000,
                          check_params_cb=lambda e: isinstance(e, (ModelReady, Failed))) as ready:
        lumen.engine.send(LoadModel(str(tiny_model_dir), device="cpu"))
    assert isinstance(ready.args[0], ModelReady), ready.args

    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=60_000):
        lumen.controller.handle_action("describe_screen")
    assert lumen.controller.last_stats.images_encoded == 1
    image_id = lumen.controller.conversation.last_image_id
    screen_text = _feature(lumen, "ScreenTextFeature").text
    qtbot.waitUntil(lambda: screen_text.lines_for(image_id) is not None, timeout=30_000)  # real OCR, after the answer

    question = QUESTIONS[3]
    recorder = _feature(lumen, "VoiceFeature").recorder
    recorder.stream_factory = FakeMicrophone(int16_samples(spoken_wav(question)))
    lumen.controller.handle_action("voice")  # the push-to-talk hotkey goes down ...
    assert recorder.recording
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=60_000):
        recorder.release()  # ... and up

    transcribes = [r for r in lumen.sent if isinstance(r, Transcribe)]
    assert len(transcribes) == 1 and transcribes[0].language == "en"
    follow_up = [r for r in lumen.sent if isinstance(r, Describe)][-1]
    assert normalise(follow_up.question) == question
    assert any(normalise(t).startswith("heard") and normalise(t).endswith(question) for t in lumen.speaker.texts)
    assert follow_up.new_image_ids == ()  # a follow-up: no new image
    assert follow_up.history[0].image_ids == (image_id,)
    assert "Save changes to document.txt?" in follow_up.context  # grounded in the real OCR text
    assert "Don't Save | Cancel | Save" in follow_up.context
    assert lumen.controller.last_stats.images_encoded == 0
    assert lumen.controller.last_stats.images_from_cache == 1


@pytest.mark.system
def test_read_the_text_and_voice_failures_need_no_model(qtbot, lumen) -> None:  # noqa: ANN001
    lumen.controller.handle_action("describe_screen")  # no model: the answer fails, the image stays
    qtbot.waitUntil(lambda: lumen.controller.conversation.last_image_id is not None, timeout=10_000)
    lumen.controller.handle_action("read_text")
    qtbot.waitUntil(lambda: "Don't Save, Cancel, Save" in lumen.speaker.texts, timeout=30_000)
    said = lumen.speaker.texts
    start = said.index("5 lines of text")
    assert said[start:start + 6] == ["5 lines of text", "File Edit View Help", "Save changes to document.txt?",
                                     "Your changes will be lost if you don't save them.", "Don't Save, Cancel, Save",
                                     "Battery 87%, Wi-Fi: Connected, 12:45 PM"]
    assert any(isinstance(r, ReadText) for r in lumen.sent)

    # The recorder refuses silence itself; the engine must too, and its reason must reach the user.
    voice = _feature(lumen, "VoiceFeature")
    voice.recorder.recorded.emit(build_wav(np.zeros(16_000, np.int16)))
    qtbot.waitUntil(lambda: messages.VOICE_FAILURES["silence"] in lumen.speaker.texts, timeout=10_000)
    voice.recorder.recorded.emit(b"not a wav")
    qtbot.waitUntil(lambda: messages.VOICE_FAILURES["bad_recording"] in lumen.speaker.texts, timeout=10_000)


def test_spoken_question_language_follows_the_settings(qtbot, lumen) -> None:  # noqa: ANN001
    """A language the speech model cannot understand is refused before anything is recognised: the
    bundled tiny.en knows English only, and the user hears what to change (not that voice input is
    missing). The engine's own check, and the language reaching Transcribe, are tested in
    test_speech_models.py."""
    lumen.controller.settings = dataclasses.replace(lumen.controller.settings, speech_language="de")
    _feature(lumen, "VoiceFeature").recorder.recorded.emit(spoken_wav(QUESTIONS[0]))
    qtbot.waitUntil(lambda: any("Whisper tiny.en understands English only, not German" in t for t in lumen.speaker.texts),
                    timeout=10_000)
    assert not [r for r in lumen.sent if isinstance(r, Transcribe)]
