"""Desktop test rig: the real controller and engine client, a scripted engine, recording fakes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from desktop.assistant import AssistantController
from desktop.engine_client import EngineClient, thread_launcher
from desktop.settings import Settings, SpeechOutput
from tests.fakes import FakeCapture, RecordingReader, RecordingEarcons, RecordingSpeaker, ScriptedEngine


@dataclass
class Rig:
    controller: AssistantController
    client: EngineClient
    engine: ScriptedEngine
    speaker: RecordingSpeaker
    reader: RecordingReader
    earcons: RecordingEarcons
    grabber: FakeCapture


def make_rig(engine, grabber=None, readers=None, **settings) -> Rig:  # noqa: ANN001
    client = EngineClient(thread_launcher(engine.serve))
    speaker, reader, earcons = RecordingSpeaker(), readers or RecordingReader(), RecordingEarcons()
    grabber = grabber or FakeCapture()
    cfg = dataclasses.replace(Settings(speech_output=SpeechOutput.VOICE), **settings)
    controller = AssistantController(client, speaker, reader, earcons, cfg, grabber=grabber, max_wait=0.3)
    client.start()
    return Rig(controller, client, engine, speaker, reader, earcons, grabber)


@pytest.fixture
def rig(qtbot):  # noqa: ANN001
    r = make_rig(ScriptedEngine())
    yield r
    r.client.shutdown()


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
