"""The engine worker over a real pipe: the same loop the app runs in its engine process."""

from __future__ import annotations

import functools
import io
import time

import pytest
import torch
from PIL import Image

from engine.handle import EngineHandle, run_in_thread
from engine.protocol import (Cancel, Describe, ErrorKind, Failed, Finished, ForgetConversation,
                             GenerationSettings, ImageInput, LoadModel, ModelReady, Progress, TextDelta, Turn)
from engine.worker import serve, spawn_worker

LONG = GenerationSettings.greedy(max_new_tokens=120, stop_on_template=False)


def png(color=(200, 30, 30), size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def worker(tiny_model_dir):
    handle = run_in_thread(serve)
    events = handle.request(LoadModel(str(tiny_model_dir), device="cpu"), timeout=60)
    assert isinstance(events[0], Progress) and isinstance(events[-1], ModelReady), events
    assert "cpu_slow" in events[-1].warnings
    assert events[-1].image_size == 56  # the tiny config's vision input side
    yield handle
    handle.stop()


def describe(rid: int, conv: str = "c1", history=(), new=("img1",), images=None, settings=LONG, question="What is this?"):
    images = images if images is not None else (ImageInput("img1", png()),)
    return Describe(rid, conv, question, tuple(history), tuple(new), tuple(images), settings)


def test_describe_streams_deltas_that_add_up_to_the_answer(worker):
    events = worker.request(describe(1), 60)
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    finished = events[-1]
    assert isinstance(finished, Finished) and not finished.cancelled
    assert len(deltas) > 1
    assert "".join(deltas) == finished.text
    assert finished.stats.images_encoded == 1 and finished.stats.new_tokens == 120
    stats = finished.stats  # the first delta is a whole word: it comes after the first token
    assert 0 < stats.first_token_seconds <= stats.first_delta_seconds < stats.total_seconds


def test_follow_up_reuses_the_cached_image(worker):
    first = worker.request(describe(2, conv="c2"), 60)[-1]
    history = (Turn("user", "What is this?", ("img1",)), Turn("assistant", first.text))
    second = worker.request(describe(3, conv="c2", history=history, new=(), question="And the colour?"), 60)[-1]
    assert isinstance(second, Finished)
    assert second.stats.images_encoded == 0 and second.stats.images_from_cache == 1
    worker.conn.send(ForgetConversation("c2"))
    again = worker.request(describe(4, conv="c2", history=history, new=(), question="And the colour?"), 60)[-1]
    assert again.stats.images_encoded == 1


def test_several_images_in_one_conversation(worker):
    images = (ImageInput("a", png((255, 0, 0))), ImageInput("b", png((0, 0, 255))))
    history = (Turn("user", "First?", ("a",)), Turn("assistant", "red"))
    done = worker.request(describe(5, conv="c3", history=history, new=("b",), images=images), 60)[-1]
    assert isinstance(done, Finished) and done.stats.images_encoded == 2


def test_cancel_stops_within_a_step(worker):
    settings = GenerationSettings.greedy(max_new_tokens=1500, max_length=2000, stop_on_template=False)
    worker.conn.send(describe(6, conv="c4", settings=settings))
    while True:  # wait until it is generating
        event = worker.recv()
        if isinstance(event, TextDelta):
            break
    worker.conn.send(Cancel(6))
    finished = collect_until(worker, lambda e: isinstance(e, Finished) and e.request_id == 6)[-1]
    assert isinstance(finished, Finished) and finished.cancelled
    assert finished.stats.new_tokens < 1500


def test_cancel_before_start_answers_at_once(worker):
    worker.conn.send(Cancel(7))
    finished = worker.request(describe(7, conv="c5"), 60)[-1]
    assert isinstance(finished, Finished) and finished.cancelled and finished.text == ""


def test_bad_image_is_a_typed_failure_and_the_worker_goes_on(worker):
    failed = worker.request(describe(8, conv="c6", images=(ImageInput("img1", b"this is not an image"),)), 60)[-1]
    assert isinstance(failed, Failed) and failed.kind is ErrorKind.BAD_IMAGE and failed.request_id == 8
    assert isinstance(worker.request(describe(9, conv="c6"), 60)[-1], Finished)


def test_simulated_out_of_memory_then_next_request_works(worker, monkeypatch):
    from engine.minigpt4.describer import Describer

    real = Describer.describe
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Describer, "describe", flaky)
    failed = worker.request(describe(10, conv="c7"), 60)[-1]
    assert isinstance(failed, Failed) and failed.kind is ErrorKind.OUT_OF_MEMORY
    assert isinstance(worker.request(describe(11, conv="c7"), 60)[-1], Finished)


def test_request_ends_at_its_own_answer_and_a_silent_engine_times_out():
    """``EngineHandle.request``: heartbeats skipped, an answer to another request is not this one's,
    and no answer within the timeout is a TimeoutError, not a hang."""
    handle = run_in_thread(serve)  # no model: every Describe fails at once
    try:
        handle.send(describe(1))
        events = handle.request(describe(2), 10)
        assert [(type(e).__name__, e.request_id) for e in events] == [("Failed", 1), ("Failed", 2)]
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            handle.request(Cancel(3), 1.5)  # a Cancel is never answered; heartbeats come meanwhile
        assert time.monotonic() - start < 5
    finally:
        handle.stop()
    assert not handle.is_alive()


def test_describe_without_a_model_and_a_missing_model_folder(tmp_path):
    handle = run_in_thread(serve)
    try:
        assert handle.request(describe(1), 60)[-1].kind is ErrorKind.NO_MODEL_LOADED
        failed = handle.request(LoadModel(str(tmp_path / "nowhere"), device="cpu"), 60)[-1]
        assert isinstance(failed, Failed) and failed.kind is ErrorKind.MODEL_MISSING
    finally:
        handle.stop()


@pytest.mark.system
def test_spawned_engine_process_answers_and_exits(tiny_model_dir):
    handle = spawn_worker()
    try:
        assert isinstance(handle.request(LoadModel(str(tiny_model_dir), device="cpu"), timeout=120)[-1], ModelReady)
        assert isinstance(handle.request(describe(1, settings=GenerationSettings.greedy(max_new_tokens=8)), 60)[-1], Finished)
    finally:
        handle.stop()
    assert not handle.is_alive()


def test_a_conversation_with_more_images_than_the_cache_holds_keeps_working(worker, monkeypatch):
    """The cache limit used to evict images the same request needed, then fail with a KeyError on
    this and every later question of the conversation."""
    from engine.minigpt4 import describer

    monkeypatch.setattr(describer, "MAX_CACHED_IMAGES", 2)
    images = tuple(ImageInput(f"i{n}", png((60 * n, 0, 0))) for n in range(3))
    history = (Turn("user", "First?", ("i0", "i1")), Turn("assistant", "red"))
    quick = GenerationSettings.greedy(max_new_tokens=4)
    done = worker.request(describe(12, conv="c8", history=history, new=("i2",), images=images, settings=quick), 60)[-1]
    assert isinstance(done, Finished) and done.stats.images_encoded == 3, done
    history += (Turn("user", "Second?", ("i2",)), Turn("assistant", "black"))
    done = worker.request(describe(13, conv="c8", history=history, new=(), images=(), settings=quick), 60)[-1]
    assert isinstance(done, Finished) and done.stats.images_from_cache == 3, done


def test_an_image_neither_cached_nor_sent_is_asked_for(worker):
    from engine.protocol import ImagesNeeded

    quick = GenerationSettings.greedy(max_new_tokens=4)
    history = (Turn("user", "What is this?", ("img1",)), Turn("assistant", "red"))
    worker.conn.send(describe(14, conv="c9", history=history, new=(), images=(), settings=quick))
    events = collect_until(worker, lambda e: isinstance(e, (ImagesNeeded, Finished, Failed)))
    assert events[-1] == ImagesNeeded(14, ("img1",))
    done = worker.request(describe(14, conv="c9", history=history, new=(), settings=quick), 60)[-1]  # with the bytes
    assert isinstance(done, Finished) and done.stats.images_encoded == 1


def collect_until(handle: EngineHandle, last, timeout: float = 60.0) -> list[object]:  # noqa: ANN001
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            events.append(handle.recv(0.1))
        except TimeoutError:
            continue
        if last(events[-1]):
            return events
    raise AssertionError(f"no final event within {timeout}s: {events}")


@pytest.fixture(scope="module")
def slow_ocr_worker(tiny_model_dir):
    """The real worker with an OCR that takes a minute per image (a busy CPU)."""
    from tests.fakes import SlowOcr

    handle = run_in_thread(functools.partial(serve, ocr_backend=functools.partial(SlowOcr, 60.0)))
    assert isinstance(handle.request(LoadModel(str(tiny_model_dir), device="cpu"), 60)[-1], ModelReady)
    yield handle
    handle.stop()


def test_ocr_never_delays_a_describe_and_cancel_ends_it(slow_ocr_worker):
    from engine.protocol import ReadText, TextRead

    w = slow_ocr_worker
    w.conn.send(ReadText(30, ImageInput("img1", png()), background=True))  # starts the minute-long OCR
    w.conn.send(ReadText(31, ImageInput("img1", png()), background=True))  # queued behind it
    start = time.monotonic()
    done = w.request(describe(32, conv="o1", settings=GenerationSettings.greedy(max_new_tokens=8)), 60)[-1]
    assert isinstance(done, Finished) and time.monotonic() - start < 30  # not behind the OCR
    start = time.monotonic()
    w.conn.send(Cancel(31))  # queued: dropped
    w.conn.send(Cancel(30))  # running: its process is ended
    ended = collect_until(w, lambda e: isinstance(e, TextRead) and e.request_id == 30, timeout=20)
    assert time.monotonic() - start < 20
    reads = [e for e in ended if isinstance(e, TextRead)]
    assert reads == [TextRead(31, (), cancelled=True), TextRead(30, (), cancelled=True)]


@pytest.mark.system
def test_the_users_own_read_goes_before_background_ocr(tiny_model_dir):
    """A "read the text" queued behind a background OCR that is running pre-empts it."""
    from engine.protocol import ReadText, TextRead
    from tests.fakes import SlowOcr

    handle = run_in_thread(functools.partial(serve, ocr_backend=functools.partial(SlowOcr, 3.0)))
    try:
        handle.conn.send(ReadText(1, ImageInput("a", png()), background=True))
        handle.conn.send(ReadText(2, ImageInput("b", png()), background=True))
        time.sleep(1.0)  # 1 is running
        handle.conn.send(ReadText(3, ImageInput("c", png())))
        events = collect_until(handle, lambda e: isinstance(e, TextRead) and e.request_id == 2, timeout=60)
        order = [e.request_id for e in events if isinstance(e, TextRead)]
        assert order == [3, 1, 2] and all(e.lines[0].text == "Slow text" for e in events)
    finally:
        handle.stop()


@pytest.mark.system
def test_the_engine_process_runs_ocr_in_a_process_of_its_own():
    """The engine process is daemonic (the app ends it on exit), and a daemonic multiprocessing
    process may not start children unless it says so: OCR must still work there."""
    from engine.protocol import ReadText, TextRead
    from tests import ocr_screens

    handle = spawn_worker()
    try:
        out = io.BytesIO()
        ocr_screens.save_dialog().image.save(out, format="PNG")
        handle.conn.send(ReadText(1, ImageInput("dialog", out.getvalue())))
        event = collect_until(handle, lambda e: getattr(e, "request_id", None) == 1, timeout=120)[-1]
        assert isinstance(event, TextRead) or event.kind is ErrorKind.UNAVAILABLE, event
        if isinstance(event, TextRead):
            assert "Save changes to document.txt?" in event.text
    finally:
        handle.stop()
    assert not handle.is_alive()


@pytest.mark.skipif(not hasattr(__import__("os"), "nice"), reason="POSIX niceness")
@pytest.mark.system
def test_ocr_runs_at_the_lowest_cpu_priority():
    """So that an answer the user waits for gets the CPU first, OCR running beside it or not."""
    import os

    from engine.protocol import ReadText, TextRead
    from tests.fakes import PriorityOcr

    handle = run_in_thread(functools.partial(serve, ocr_backend=PriorityOcr))
    try:
        handle.conn.send(ReadText(1, ImageInput("a", png())))
        event = collect_until(handle, lambda e: isinstance(e, (TextRead, Failed)), timeout=60)[-1]
        assert isinstance(event, TextRead) and event.text == "nice 19" and os.nice(0) < 19
    finally:
        handle.stop()
