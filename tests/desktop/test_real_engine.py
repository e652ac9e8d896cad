"""The whole flow with the real engine worker (engine.worker.serve) and the tiny parity model."""

from __future__ import annotations

import pytest

from desktop import messages
from desktop.engine_client import EngineClient, process_launcher
from desktop.hotkeys import HotkeyService
from engine.protocol import ModelReady, TextDelta
from tests.desktop.conftest import make_rig


def normal(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def real(qtbot, tiny_model_dir):  # noqa: ANN001
    from engine import worker

    class Real:
        serve = staticmethod(worker.serve)

    rig = make_rig(Real(), model_dir=str(tiny_model_dir), device="cpu", max_new_tokens=24)
    with qtbot.waitSignal(rig.client.event, timeout=60000, check_params_cb=lambda e: isinstance(e, ModelReady)):
        assert rig.controller.load_model()
    assert "Model ready: minigpt4-tiny, on the processor, so answers will be slow." in rig.speaker.texts
    rig.speaker.spoken.clear()
    yield rig
    rig.client.shutdown()


def answer_of(rig, qtbot, action) -> str:  # noqa: ANN001
    with qtbot.waitSignal(rig.controller.answer_finished, timeout=60000) as blocker:
        action()
    return blocker.args[0]


def test_hotkey_signal_capture_engine_streamed_speech(real, qtbot) -> None:  # noqa: ANN001
    hotkeys = HotkeyService()  # the same signal pynput's thread emits
    hotkeys.activated.connect(real.controller.handle_action)
    deltas: list[str] = []
    real.client.event.connect(lambda e: deltas.append(e.text) if isinstance(e, TextDelta) else None)
    answer = answer_of(real, qtbot, lambda: hotkeys.activated.emit("describe_screen"))

    assert answer.strip() and len(deltas) > 1  # streamed in pieces
    said = real.speaker.texts
    assert said[0] == messages.DESCRIBING_SCREEN
    assert said[-1] == messages.DONE
    assert normal(" ".join(said[1:-1])) == normal(answer)  # every word spoken, in order, nothing else
    assert real.controller.last_stats.images_encoded == 1


def test_capture_crosses_the_pipe_at_the_model_size_and_stays_full_size_here(real, qtbot) -> None:  # noqa: ANN001
    """ModelReady.image_size (56 for the tiny model) makes the capture thread send the model's view
    (the official bicubic resize, bit-identical: tests/engine/test_image_io.py), not the 320x200 frame."""
    assert real.controller.model_image_size == 56
    sent: list = []
    real.controller.request_sent.connect(sent.append)
    answer = answer_of(real, qtbot, lambda: real.controller.handle_action("describe_screen"))
    assert answer.strip() and real.controller.last_stats.images_encoded == 1
    (image,) = sent[0].images
    assert (image.encoding, image.size, len(image.data)) == ("rgb", (56, 56), 56 * 56 * 3)
    kept = real.controller.conversation.images[image.image_id]
    assert kept.size == (320, 200)  # the full capture stays for OCR and the transcript
    answer_of(real, qtbot, lambda: real.controller.ask("And the colours?"))
    assert sent[1].images == sent[0].images and real.controller.last_stats.images_from_cache == 1


def test_follow_up_does_not_re_encode_the_image(real, qtbot) -> None:  # noqa: ANN001
    answer_of(real, qtbot, lambda: real.controller.handle_action("describe_screen"))
    first = real.controller.last_stats
    answer_of(real, qtbot, lambda: real.controller.ask("What colour is the button?"))
    follow = real.controller.last_stats
    assert (first.images_encoded, follow.images_encoded, follow.images_from_cache) == (1, 0, 1)
    assert len(real.controller.conversation.entries) == 4


@pytest.mark.slow
def test_killed_engine_process_is_restarted_and_the_conversation_kept(qtbot, tiny_model_dir) -> None:  # noqa: ANN001
    """A real spawned engine process, killed in the middle of an answer."""
    from tests.fakes import FakeCapture, RecordingAnnouncer, RecordingEarcons, RecordingSpeaker
    from desktop.assistant import AssistantController
    from desktop.settings import Settings, SpeechOutput

    client = EngineClient(process_launcher)
    speaker = RecordingSpeaker()
    settings = Settings(speech_output=SpeechOutput.VOICE, model_dir=str(tiny_model_dir), device="cpu",
                        max_new_tokens=200)
    controller = AssistantController(client, speaker, RecordingAnnouncer(), RecordingEarcons(), settings,
                                     grabber=FakeCapture())
    client.start()
    try:
        with qtbot.waitSignal(client.event, timeout=120000, check_params_cb=lambda e: isinstance(e, ModelReady)):
            controller.load_model()
        with qtbot.waitSignal(controller.answer_finished, timeout=60000):
            controller.handle_action("describe_screen")
        kept = list(controller.conversation.entries)
        first_pid = client.pid

        def kill_on_first_delta(event: object) -> None:
            if isinstance(event, TextDelta):
                client.event.disconnect(kill_on_first_delta)
                client.kill()

        client.event.connect(kill_on_first_delta)
        with qtbot.waitSignal(client.restarted, timeout=60000):
            controller.ask("Tell me more.")
        assert client.pid != first_pid
        assert messages.ENGINE_RESTARTED in speaker.texts
        assert controller.conversation.entries[: len(kept)] == kept  # nothing lost
        assert controller.state.value == "idle"
        # The new engine was sent the model again and answers, re-encoding the image once.
        with qtbot.waitSignal(client.event, timeout=120000, check_params_cb=lambda e: isinstance(e, ModelReady)):
            pass
        with qtbot.waitSignal(controller.answer_finished, timeout=60000):
            controller.ask("Tell me more.")
        assert controller.last_stats.images_encoded == 1
    finally:
        client.shutdown()


def test_stop_cancels_the_real_generation_and_the_speech(real, qtbot) -> None:  # noqa: ANN001
    from engine.protocol import Finished

    real.controller.settings = __import__("dataclasses").replace(real.controller.settings, max_new_tokens=1000)
    stopped: list[int] = []

    def stop_on_first_delta(event: object) -> None:
        if isinstance(event, TextDelta) and not stopped:
            stopped.append(real.speaker.stops)
            real.controller.handle_action("stop")

    real.client.event.connect(stop_on_first_delta)
    with qtbot.waitSignal(real.client.event, timeout=60000,
                          check_params_cb=lambda e: isinstance(e, Finished)) as blocker:
        real.controller.handle_action("describe_screen")
    finished = blocker.args[0]
    assert finished.cancelled and finished.stats.new_tokens < 1000
    assert real.speaker.stops > stopped[0] and real.earcons.played[-1] == "stopped"
    assert real.controller.state.value == "idle"


def test_dropped_photo_with_the_real_engine(real, qtbot, tmp_path) -> None:  # noqa: ANN001
    from PIL import Image

    from desktop.widgets.main_window import MainWindow

    window = MainWindow(real.controller)
    qtbot.addWidget(window)
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (320, 240), (90, 140, 200)).save(photo)
    with qtbot.waitSignal(real.controller.answer_finished, timeout=60000) as blocker:
        assert window.add_photo_file(photo)
    assert blocker.args[0].strip()
    assert real.controller.last_stats.images_encoded == 1
    assert real.speaker.texts[0] == messages.DESCRIBING_PHOTO
