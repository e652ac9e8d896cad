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
