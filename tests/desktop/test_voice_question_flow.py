"""A spoken follow-up question, end to end, through the real engine worker and the tiny model:

fake microphone -> VoiceRecorder -> Transcribe -> engine worker (speech_input) -> Transcribed
-> AssistantController.ask -> Describe follow-up -> the image embeddings cached by the first answer.
Also "read the text" through the worker with no MiniGPT-4 model loaded.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from desktop.screen_text import Purpose, ScreenText, reading_chunks
from desktop.voice_input import RecordingMode, VoiceRecorder, build_wav, failure_reason
from engine import speech_input
from engine.protocol import (Describe, ErrorKind, Failed, ImageInput, LoadModel, ModelReady, ReadText,
                             TextRead, Transcribe, Transcribed)
from engine.worker import serve
from tests import ocr_screens
from tests.desktop.conftest import make_rig
from tests.desktop.test_voice_input import FakeMicrophone
from tests.speech_samples import QUESTIONS, int16_samples, normalise, spoken_wav


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def real_rig(qtbot):  # noqa: ANN001
    rig = make_rig(SimpleNamespace(serve=serve), max_new_tokens=16)
    sent: list[object] = []
    send = rig.client.send
    rig.client.send = lambda request: (sent.append(request), send(request))[1]
    rig.sent = sent
    yield rig
    rig.client.shutdown()


def _event(qtbot, rig, kind, action, timeout=60_000):  # noqa: ANN001, ANN202
    with qtbot.waitSignal(rig.client.event, timeout=timeout,
                          check_params_cb=lambda e: isinstance(e, (kind, Failed))) as blocker:
        action()
    event = blocker.args[0]
    assert isinstance(event, kind), event
    return event


def test_spoken_follow_up_reaches_the_engine_about_the_cached_image(qtbot, real_rig, tiny_model_dir) -> None:
    try:
        speech_input.get_recognizer()
    except speech_input.SpeechInputUnavailable as exc:
        pytest.skip(f"voice extra not installed: {exc}")
    rig = real_rig
    _event(qtbot, rig, ModelReady, lambda: rig.client.send(LoadModel(str(tiny_model_dir), device="cpu")))

    rig.controller.conversation.attach_image(ImageInput("shot1", _png(ocr_screens.save_dialog().image)), "screen")
    with qtbot.waitSignal(rig.controller.answer_finished, timeout=60_000):
        assert rig.controller.ask("Describe this image.")
    assert rig.controller.last_stats.images_encoded == 1

    # The wiring the desktop will do: recorder -> Transcribe; Transcribed -> ask.
    question = QUESTIONS[3]
    recorder = VoiceRecorder(RecordingMode.HOLD, stream_factory=FakeMicrophone(int16_samples(spoken_wav(question))))
    recorder.recorded.connect(lambda wav: rig.client.send(Transcribe(rig.client.new_request_id(), wav, "en")))
    heard: list[str] = []
    rig.controller.transcribed.connect(lambda event: (heard.append(event.text), rig.controller.ask(event.text)))

    recorder.press()
    with qtbot.waitSignal(rig.controller.answer_finished, timeout=60_000):
        recorder.release()
    assert [normalise(text) for text in heard] == [question]
    follow_up = [r for r in rig.sent if isinstance(r, Describe)][-1]
    assert normalise(follow_up.question) == question
    assert follow_up.new_image_ids == ()  # a follow-up: no new image
    assert follow_up.history[0].image_ids == ("shot1",)
    assert rig.controller.last_stats.images_encoded == 0
    assert rig.controller.last_stats.images_from_cache == 1


def test_read_the_text_and_voice_failures_need_no_model(qtbot, real_rig) -> None:
    rig = real_rig
    screen = ScreenText()
    rid = rig.client.new_request_id()
    screen.requested(rid, "shot1", Purpose.READ)
    image = ImageInput("shot1", _png(ocr_screens.save_dialog().image))
    event = _event(qtbot, rig, TextRead, lambda: rig.client.send(ReadText(rid, image)))
    result = screen.on_text_read(event)
    assert reading_chunks(result.lines)[3] == "Don't Save, Cancel, Save"
    assert screen.context_for(["shot1"]).startswith("File Edit View Help\nSave changes to document.txt?")

    # The recorder refuses silence itself; the engine must too (another client may send it).
    failed = _event(qtbot, rig, Failed, lambda: rig.client.send(
        Transcribe(rig.client.new_request_id(), build_wav(np.zeros(16_000, np.int16)), "en")))
    assert failed.kind is ErrorKind.BAD_REQUEST and failure_reason(failed) == "silence"
    failed = _event(qtbot, rig, Failed, lambda: rig.client.send(
        Transcribe(rig.client.new_request_id(), b"not a wav", "en")))
    assert failed.kind is ErrorKind.BAD_REQUEST and failure_reason(failed) == "bad_recording"
