"""A working day without a crash: the app's real signal paths thousands of times, captures, a soak.

The composed app (``desktop.app.build``) is driven by the soak driver of benchmarks/soak.py.
"""

from __future__ import annotations

import dataclasses
import gc
import sys

import pytest

from benchmarks import soak
from desktop import app, capture
from desktop.engine_client import thread_launcher
from desktop.settings import SpeechOutput
from tests.fakes import RecordingEarcons, RecordingSpeaker, ScriptedEngine


@pytest.fixture
def scripted_app(qtbot, tmp_path):  # noqa: ANN001
    """The whole app, real captures of the Xvfb screen, the scripted engine in a thread."""
    lumen = app.build(tmp_path / "settings.json", launcher=thread_launcher(ScriptedEngine(delay=0).serve),
                      speaker=RecordingSpeaker(), earcons=RecordingEarcons())
    lumen.controller.settings = lumen.settings = dataclasses.replace(lumen.settings, speech_output=SpeechOutput.VOICE)
    qtbot.addWidget(lumen.window)
    app.start(lumen, hotkeys=False, first_run_setup=False)
    yield lumen
    lumen.engine.shutdown()


def singleton_counts() -> dict[str, int]:
    gc.collect()
    return {"True": sys.getrefcount(True), "False": sys.getrefcount(False), "None": sys.getrefcount(None)}


@pytest.mark.display
def test_thousands_of_signals_keep_true_false_and_none_alive(scripted_app) -> None:  # noqa: ANN001
    """PySide6 6.12.0 on Python 3.11 dropped a reference to True on every Python-declared signal
    emit (and to None in void Qt calls): ~33 per "describe screen", a bool_dealloc abort at the
    98th. 250 requests emit thousands of signals through the controller, the engine client's
    reader thread, the capture thread, the window and the transcript."""
    driver = soak.Soak(scripted_app, timeout=30)
    for n in range(25):  # warm up: caches, lazy imports, the first conversation
        driver.request(n)
    before = singleton_counts()
    for n in range(25, 275):
        driver.request(n)
    after = singleton_counts()
    assert not driver.failures
    assert driver.counts["screen"] == driver.counts["photo"] == 55
    lost = {name: before[name] - after[name] for name in before}
    assert all(n < 100 for n in lost.values()), f"references lost over 250 requests: {lost}"


@pytest.mark.display
def test_captures_reuse_one_x_connection(scripted_app) -> None:  # noqa: ANN001
    """Each capture used to open an X connection (a new mss in a QThreadPool job, whose thread-local
    instance did not survive the job) and never close it: 3 -> 33 -> 63 over 60 captures, until the
    X server's client limit refused captures here and new windows in every other program."""
    driver = soak.Soak(scripted_app, timeout=30)
    driver.request(0)  # a screen description: the capture thread's mss is created
    before = soak.x_connections()
    if before is None:
        pytest.skip("needs ss (iproute2) to count X connections")
    for n in range(1, 40):
        driver.request(n)
    assert driver.counts["screen"] + driver.counts["screen_stopped"] == 16
    assert soak.x_connections() == before
    capture.invalidate_grabbers()  # a monitor change: the old connection is closed, a new one opened
    driver.request(40)
    assert soak.x_connections() == before


@pytest.mark.system
@pytest.mark.display
@pytest.mark.timeout(900)
def test_a_few_hundred_real_requests_without_growth_or_a_crash(qtbot, tmp_path) -> None:  # noqa: ANN001
    """The short soak (benchmarks/soak.py runs 2,000): the composed app, the engine in its own
    process with the demo model, real captures; 150 mixed requests, measured every 25."""
    lumen = soak.build_app(tmp_path, soak.model_dir(None, tmp_path), voice=False)
    qtbot.addWidget(lumen.window)
    try:
        reports = soak.run(lumen, 150, 25, lambda row: None)
        assert lumen.engine.running
    finally:
        lumen.shutdown()
    assert [r["failures"] for r in reports] == [0] * 6
    steady = reports[1:]  # after the first 25: lazy imports, caches, the first conversation
    for key in ("fds", "x_connections"):
        values = [r[key] for r in steady]
        assert max(values) - min(values) <= 1, (key, values)
    for key, allowed in (("rss_mb", 15), ("engine_rss_mb", 30)):
        values = [r[key] for r in steady]
        assert values[-1] - values[0] < allowed, (key, values)
