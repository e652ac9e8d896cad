"""The whole flow with the real engine worker (engine.worker.serve) and the tiny parity model."""

from __future__ import annotations

import pytest

from desktop import messages
from desktop.engine_client import process_launcher, thread_launcher
from desktop.hotkeys import HotkeyService
from engine.protocol import ModelReady, TextDelta
from tests.desktop.conftest import build_app, load_model


def normal(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def real(qtbot, new_rig, tiny_model_dir):  # noqa: ANN001
    from engine import worker

    rig = new_rig(launcher=thread_launcher(worker.serve), model_dir=str(tiny_model_dir), device="cpu", max_new_tokens=24)
    load_model(qtbot, rig)
    assert "Model ready: minigpt4-tiny, on the processor, so answers will be slow." in rig.speaker.texts
    rig.speaker.spoken.clear()
    return rig


def answer_of(rig, qtbot, action) -> str:  # noqa: ANN001
    with qtbot.waitSignal(rig.controller.answer_finished, timeout=60000) as blocker:
        action()
    return blocker.args[0]


def test_hotkey_signal_capture_engine_streamed_speech(real, qtbot) -> None:  # noqa: ANN001
    hotkeys = HotkeyService()  # the same signal a registered hotkey emits
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
    assert sent[1].images == () and real.controller.last_stats.images_from_cache == 1  # sent once


def test_follow_ups_of_a_long_conversation_send_no_image_again(real, qtbot) -> None:  # noqa: ANN001
    """The pipe traffic of a follow-up stays bounded (it used to carry every image of the
    conversation again, and the app's memory grew with each one)."""
    import pickle

    sent: list = []
    real.controller.request_sent.connect(sent.append)
    answer_of(real, qtbot, lambda: real.controller.handle_action("describe_screen"))
    for n in range(4):
        answer_of(real, qtbot, lambda: real.controller.ask(f"Question {n}?"))
        stats = real.controller.last_stats  # the real engine re-encodes nothing
        assert (stats.images_encoded, stats.images_from_cache) == (0, 1)
    assert [len(r.images) for r in sent] == [1, 0, 0, 0, 0]
    history_bytes = len(pickle.dumps(sent[-1].history))
    assert len(pickle.dumps(sent[-1])) < history_bytes + 2000 < len(pickle.dumps(sent[0].images))


def test_killed_engine_process_is_restarted_and_the_conversation_kept(qtbot, new_rig, tiny_model_dir) -> None:  # noqa: ANN001
    """A real spawned engine process, killed in the middle of an answer."""
    rig = new_rig(launcher=process_launcher, model_dir=str(tiny_model_dir), device="cpu", max_new_tokens=200)
    client, controller = rig.client, rig.controller
    load_model(qtbot, rig)
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
    assert messages.ENGINE_RESTARTED in rig.speaker.texts
    assert controller.conversation.entries[: len(kept)] == kept  # nothing lost
    assert controller.state.value == "idle"
    # The new engine was sent the model again and answers, re-encoding the image once.
    with qtbot.waitSignal(client.event, timeout=120000, check_params_cb=lambda e: isinstance(e, ModelReady)):
        pass
    with qtbot.waitSignal(controller.answer_finished, timeout=60000):
        controller.ask("Tell me more.")
    assert controller.last_stats.images_encoded == 1


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
    Image.linear_gradient("L").resize((320, 240)).convert("RGB").save(photo)
    with qtbot.waitSignal(real.controller.answer_finished, timeout=60000) as blocker:
        window.add_photo_file(photo)
    assert blocker.args[0].strip()
    assert real.controller.last_stats.images_encoded == 1
    assert real.speaker.texts[0] == messages.DESCRIBING_PHOTO


@pytest.fixture
def slow_ocr_app(qtbot, tmp_path, tiny_model_dir):  # noqa: ANN001
    """The app as built by desktop.app.build (screen text wired in), the real worker in a thread with
    the tiny model, and an OCR backend that takes a minute per image (a busy CPU)."""
    import functools

    from desktop import app
    from engine.worker import serve
    from tests.fakes import SlowOcr

    lumen = build_app(qtbot, tmp_path / "settings.json", start=False,
                      serve=functools.partial(serve, ocr_backend=functools.partial(SlowOcr, 60.0)),
                      model_dir=str(tiny_model_dir), device="cpu", max_new_tokens=16, ocr=True)
    lumen.events = []
    lumen.engine.event.connect(lumen.events.append)
    with qtbot.waitSignal(lumen.engine.event, timeout=60000, check_params_cb=lambda e: isinstance(e, ModelReady)):
        app.start(lumen, hotkeys=False, first_run_setup=False)
    yield lumen
    lumen.engine.shutdown()


def test_background_ocr_never_delays_an_answer_and_stop_or_a_newer_image_cancels_it(slow_ocr_app, qtbot) -> None:  # noqa: ANN001
    import dataclasses
    import time

    from engine.protocol import Cancel, ReadText, TextRead

    lumen = slow_ocr_app

    def reads() -> list[ReadText]:
        return [r for r in lumen.sent if isinstance(r, ReadText)]

    def cancelled(read: ReadText) -> bool:
        return TextRead(read.request_id, (), cancelled=True) in lumen.events

    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=60000):
        lumen.controller.handle_action("describe_screen")
    qtbot.waitUntil(lambda: len(reads()) == 1, timeout=5000)
    first = reads()[0]
    assert first.background  # grounding for follow-ups, requested after the answer
    qtbot.wait(1500)  # the minute-long OCR is running now
    start = time.monotonic()
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=30000):  # behind the OCR it would take 60 s
        lumen.controller.handle_action("describe_screen")
    assert time.monotonic() - start < 30 and lumen.controller.last_stats.images_encoded == 1
    assert Cancel(first.request_id) in lumen.sent  # the newer image cancelled it ...
    qtbot.waitUntil(lambda: cancelled(first), timeout=10000)  # ... and the engine ended it

    qtbot.waitUntil(lambda: len(reads()) == 2, timeout=5000)
    second = reads()[1]
    qtbot.wait(1000)
    lumen.controller.handle_action("stop")
    qtbot.waitUntil(lambda: cancelled(second), timeout=10000)  # Stop ends the OCR too

    lumen.controller.settings = dataclasses.replace(lumen.controller.settings, ocr=False)
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=60000):
        lumen.controller.handle_action("describe_screen")
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=60000):
        lumen.controller.ask("And the title?")
    qtbot.wait(500)
    assert len(reads()) == 2  # grounding off: never run


def test_a_large_photo_is_decoded_once_off_the_gui_thread(real, qtbot, tmp_path) -> None:  # noqa: ANN001
    """A 16-bit 8000x8000 PNG: the GUI thread only starts the job (it once blocked 5 s), and the
    engine is sent the model's view (decoded once, in the desktop), not the picture to decode again."""
    import time

    import numpy as np
    from PIL import Image

    from desktop.widgets.main_window import MainWindow

    window = MainWindow(real.controller)
    qtbot.addWidget(window)
    values = np.zeros((8000, 8000), dtype=np.uint16)
    values[::9] = 50000
    photo = tmp_path / "scan.png"
    Image.fromarray(values).save(photo)
    sent = []
    real.controller.request_sent.connect(sent.append)
    with qtbot.waitSignal(real.controller.answer_finished, timeout=60000):
        started = time.monotonic()
        window.add_photo_file(photo)
        assert time.monotonic() - started < 0.5
        assert real.controller.doing() == messages.DOING_OPENING
    side = real.controller.model_image_size
    assert [(i.encoding, i.size) for i in sent[0].images] == [("rgb", (side, side))]
    assert real.controller.conversation.images[sent[0].new_image_ids[0]].data == photo.read_bytes()


def test_a_damaged_model_is_named_aloud_and_the_next_load_works(qtbot, new_rig, tmp_path) -> None:  # noqa: ANN001
    import dataclasses

    from engine import worker
    from tests.hostile_corpus import DEMO_MODEL, damaged_model, model_cases

    _, damage, _ = next(c for c in model_cases() if c[0] == "malformed llm config")
    rig = new_rig(launcher=thread_launcher(worker.serve), model_dir=str(damaged_model(tmp_path, damage)), device="cpu")
    said = messages.MODEL_FILE_DAMAGED.format(file="llm/config.json")
    with qtbot.waitSignal(rig.controller.status, timeout=60000, check_params_cb=lambda text: text == said):
        assert rig.controller.load_model()
    assert rig.speaker.texts[-1] == said
    rig.controller.settings = dataclasses.replace(rig.controller.settings, model_dir=str(DEMO_MODEL))
    load_model(qtbot, rig, timeout=60000)
    qtbot.waitUntil(lambda: rig.speaker.texts[-1].startswith("Model ready"), timeout=5000)


def test_unknown_free_memory_is_said_once_per_load(qtbot, new_rig, tiny_model_dir, monkeypatch) -> None:  # noqa: ANN001
    """The real engine (in its thread) cannot read the free memory, chooses bfloat16 on the CPU
    unchecked and warns "memory_unknown": the user hears it, once for each load."""
    import psutil

    from engine import worker

    def unreadable():  # noqa: ANN202 - as psutil fails where the OS refuses
        raise OSError("memory information unavailable")

    monkeypatch.setattr(psutil, "virtual_memory", unreadable)

    rig = new_rig(launcher=thread_launcher(worker.serve), model_dir=str(tiny_model_dir), device="cpu", max_new_tokens=8)
    for _ in range(2):  # the first load, then a reload
        with qtbot.waitSignal(rig.client.event, timeout=60000,
                              check_params_cb=lambda e: isinstance(e, ModelReady)) as ready:
            assert rig.controller.load_model()
        qtbot.waitUntil(lambda: messages.MEMORY_UNKNOWN in rig.speaker.texts, timeout=5000)
        assert "memory_unknown" in ready.args[0].warnings and ready.args[0].dtype == "bfloat16"
        assert rig.speaker.texts.count(messages.MEMORY_UNKNOWN) == 1
        answer_of(rig, qtbot, lambda: rig.controller.handle_action("describe_screen"))
        assert rig.speaker.texts.count(messages.MEMORY_UNKNOWN) == 1  # not again with each answer
        rig.speaker.spoken.clear()


def test_mps_out_of_memory_has_its_own_message(qtbot, new_rig, tiny_model_dir, monkeypatch) -> None:  # noqa: ANN001
    """PyTorch's MPS error (faked at from_pretrained, as an Apple GPU raises it) reaches the user as
    the Mac's shared memory running out: not "the model files do not match", and not the advice
    to choose 8-bit or 4-bit, which do not exist there."""
    from transformers import LlamaForCausalLM

    from engine import worker
    from engine.protocol import ErrorKind

    def out_of_memory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("MPS backend out of memory (MPS allocated: 17.2 GB, other allocations: 1.1 GB, "
                           "max allowed: 18.1 GB). Tried to allocate 250.0 MB on private pool.")

    monkeypatch.setattr(LlamaForCausalLM, "from_pretrained", out_of_memory)

    rig = new_rig(launcher=thread_launcher(worker.serve), model_dir=str(tiny_model_dir), device="cpu")
    said = messages.error_text(ErrorKind.OUT_OF_SHARED_MEMORY)
    with qtbot.waitSignal(rig.controller.status, timeout=60000, check_params_cb=lambda text: text == said):
        assert rig.controller.load_model()
    assert said in rig.speaker.texts and "Mac" in said
    assert messages.error_text(ErrorKind.MODEL_MISMATCH) not in rig.speaker.texts


def test_the_window_answers_and_follows_up_through_llama_cpp_with_the_demo_model(qtbot, tmp_path) -> None:  # noqa: ANN001
    """Issue 16's "done": the demo model converted to GGUF; the app as built by desktop.app.build with the
    real worker; the automatic engine choice on the processor is llama.cpp; Alt+D describes the screen, a
    question typed in the window follows up (keeping the KV cache of the first turn); every word is spoken."""
    import shutil

    from PySide6.QtCore import Qt

    from desktop import app
    from engine.store.locations import demo_model_dir
    from desktop.settings import Settings, SpeechOutput, save
    from engine import worker
    from engine.store import gguf_convert

    folder = tmp_path / "demo"
    shutil.copytree(demo_model_dir(), folder)
    gguf_convert.convert(folder, "f16")
    save(Settings(speech_output=SpeechOutput.VOICE, model_dir=str(folder), device="cpu", max_new_tokens=24, ocr=False),
         tmp_path / "settings.json")
    lumen = build_app(qtbot, tmp_path / "settings.json", serve=worker.serve, start=False)
    try:
        with qtbot.waitSignal(lumen.engine.event, timeout=120000,
                              check_params_cb=lambda e: isinstance(e, ModelReady)) as ready:
            app.start(lumen, hotkeys=False, first_run_setup=False)
        assert "llama.cpp f16 (CPU" in ready.args[0].summary, ready.args[0]
        lumen.window.activateWindow()
        qtbot.waitUntil(lumen.window.isActiveWindow, timeout=3000)
        speaker = lumen.controller.speaker
        speaker.spoken.clear()
        first = answer_of(lumen, qtbot, lambda: qtbot.keyClick(lumen.window, Qt.Key.Key_D, Qt.KeyboardModifier.AltModifier))
        stats = lumen.controller.last_stats
        assert first.strip() and stats.images_encoded == 1
        assert normal(" ".join(speaker.texts[1:-1])) == normal(first)
        lumen.window.question.setFocus()
        qtbot.keyClicks(lumen.window.question, "What colour is it?")
        speaker.spoken.clear()
        follow = answer_of(lumen, qtbot, lambda: qtbot.keyClick(lumen.window.question, Qt.Key.Key_Return))
        stats_follow = lumen.controller.last_stats
        assert follow.strip() and stats_follow.images_from_cache == 1
        assert 0 < stats_follow.reused_positions < stats_follow.prompt_positions  # turn 1 was not prefilled again
        assert normal(" ".join(speaker.texts[:-1])).endswith(normal(follow))
        assert len(lumen.controller.conversation.entries) == 4
    finally:
        lumen.engine.shutdown()
