"""Desktop test rigs: the real controller and engine client (``rig``), or the whole app as
``desktop.app.build`` makes it (``lumen``), with a scripted engine and recording fakes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from desktop.assistant import AssistantController
from desktop.engine_client import EngineClient, Launcher, thread_launcher
from desktop.settings import Settings, SpeechOutput
from engine.protocol import ModelReady
from tests.fakes import FakeCapture, RecordingReader, RecordingEarcons, RecordingSpeaker, ScriptedEngine


@dataclass
class Rig:
    controller: AssistantController
    client: EngineClient
    engine: ScriptedEngine | None  # None: a real engine (``launcher``)
    speaker: RecordingSpeaker
    reader: RecordingReader
    earcons: RecordingEarcons
    grabber: FakeCapture


def make_rig(engine: ScriptedEngine | None = None, grabber=None, readers=None,  # noqa: ANN001
             launcher: Launcher | None = None, hang_timeout: float = 15.0, **settings) -> Rig:
    """The controller and the engine client with recording fakes: ``engine`` (default: a new
    ``ScriptedEngine``) served in a thread, or a real engine through ``launcher`` (``process_launcher``,
    ``thread_launcher(engine.worker.serve)``); voice output, plus ``settings``."""
    if launcher is None:
        engine = engine or ScriptedEngine()
        launcher = thread_launcher(engine.serve)
    client = EngineClient(launcher, hang_timeout=hang_timeout)
    speaker, reader, earcons = RecordingSpeaker(), readers or RecordingReader(), RecordingEarcons()
    grabber = grabber or FakeCapture()
    cfg = dataclasses.replace(Settings(speech_output=SpeechOutput.VOICE), **settings)
    controller = AssistantController(client, speaker, reader, earcons, cfg, grabber=grabber, max_wait=0.3)
    client.start()
    return Rig(controller, client, engine, speaker, reader, earcons, grabber)


@pytest.fixture
def new_rig(qtbot):  # noqa: ANN001, ANN201
    """Makes rigs (``make_rig``'s arguments); shuts them down after the test."""
    made: list[Rig] = []

    def new(*args, **kwargs) -> Rig:  # noqa: ANN002, ANN003
        made.append(make_rig(*args, **kwargs))
        return made[-1]

    yield new
    for r in made:
        r.client.shutdown()


@pytest.fixture
def rig(new_rig) -> Rig:  # noqa: ANN001
    return new_rig()


def load_model(qtbot, rig: Rig, timeout: int = 120_000) -> None:  # noqa: ANN001
    """Load the settings' model and wait until the engine says it is ready."""
    with qtbot.waitSignal(rig.client.event, timeout=timeout, check_params_cb=lambda e: isinstance(e, ModelReady)):
        assert rig.controller.load_model()


def build_app(qtbot, settings_path: Path, serve: Callable[[Connection], None] | None = None,  # noqa: ANN001
              start: bool = True, **settings):  # noqa: ANN201 - a desktop.app.LumenApp
    """The whole app as ``desktop.app.build`` makes it (window, controller, engine client, features),
    the engine loop ``serve`` in a thread (default: a ``ScriptedEngine``, kept as ``lumen.scripted``),
    a recording speaker and earcons, a fake capture, voice output so the speaker hears everything
    (plus ``settings``), and every request sent to the engine recorded in ``lumen.sent``. Started
    (without hotkeys or the first-start wizard) unless ``start`` is False. The caller shuts the
    engine down (``lumen.engine.shutdown()``); the ``lumen`` fixture does."""
    from desktop import app

    scripted = ScriptedEngine()
    lumen = app.build(settings_path, launcher=thread_launcher(serve or scripted.serve),
                      speaker=RecordingSpeaker(), earcons=RecordingEarcons())
    lumen.scripted = scripted
    lumen.sent = []  # every request the app sends the engine
    send = lumen.engine.send
    lumen.engine.send = lambda request: (lumen.sent.append(request), send(request))[1]
    lumen.controller.grabber = FakeCapture()
    lumen.controller.settings = lumen.settings = dataclasses.replace(
        lumen.settings, **{"speech_output": SpeechOutput.VOICE, **settings})
    qtbot.addWidget(lumen.window)
    if start:
        app.start(lumen, hotkeys=False, first_run_setup=False)
    return lumen


@pytest.fixture
def lumen(qtbot, tmp_path):  # noqa: ANN001, ANN201
    """The started app with the scripted engine (see ``build_app``)."""
    app = build_app(qtbot, tmp_path / "settings.json")
    yield app
    app.engine.shutdown()


@pytest.fixture(scope="session", autouse=True)
def null_audio(tmp_path_factory):  # noqa: ANN001, ANN201
    """A private PulseAudio server with a null output, for the whole session (no sound card needed):
    the own voice plays through QAudioSink, which needs a real output. Set before any test touches
    QtMultimedia: Qt connects to the sound server once per process and never retries. None (and the
    tests that need it skip) where pulseaudio is not installed."""
    import os
    import shutil
    import subprocess
    import time

    if not shutil.which("pulseaudio") or os.environ.get("PULSE_SERVER"):
        yield os.environ.get("PULSE_SERVER")
        return
    run = tmp_path_factory.mktemp("pulse")
    socket = run / "native"
    server = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disable-shm=yes", "--use-pid-file=no",
         "-L", f"module-native-protocol-unix socket={socket} auth-anonymous=1",
         "-L", "module-null-sink sink_name=lumen_test_speakers"],
        env={**os.environ, "XDG_RUNTIME_DIR": str(run), "HOME": str(run)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not socket.exists() and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.05)
    if not socket.exists():
        server.kill()
        yield None
        return
    os.environ["PULSE_SERVER"] = f"unix:{socket}"
    try:
        yield os.environ["PULSE_SERVER"]
    finally:
        del os.environ["PULSE_SERVER"]
        server.terminate()
        server.wait(10)
