"""Engine faults the user must hear about and recover from: a hung engine, one that keeps dying."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from desktop import messages
from desktop.engine_client import EngineClient, process_launcher, thread_launcher
from engine import worker
from engine.handle import run_in_thread
from engine.protocol import Heartbeat, ModelReady, Transcribe, Transcribed
from tests.desktop.conftest import load_model
from tests.fakes import ScriptedEngine


def wait_ready(qtbot, client: EngineClient) -> None:  # noqa: ANN001
    with qtbot.waitSignal(client.event, timeout=120000, check_params_cb=lambda e: isinstance(e, ModelReady)):
        pass


@pytest.mark.system
def test_a_stopped_engine_is_killed_reaped_restarted_and_the_conversation_kept(qtbot, new_rig, tiny_model_dir) -> None:  # noqa: ANN001
    """The real engine process, stopped with SIGSTOP: before the watchdog the user heard "Asking",
    then waiting ticks and silence, and later questions got nothing."""
    rig = new_rig(launcher=process_launcher, hang_timeout=3.0, model_dir=str(tiny_model_dir), device="cpu",
                  max_new_tokens=24)
    client, controller = rig.client, rig.controller
    load_model(qtbot, rig)
    with qtbot.waitSignal(controller.answer_finished, timeout=60000):
        controller.handle_action("describe_screen")
    kept = list(controller.conversation.entries)
    stopped = client.pid
    os.kill(stopped, signal.SIGSTOP)
    with qtbot.waitSignal(client.restarted, timeout=30000):
        controller.ask("Tell me more.")
    assert messages.ENGINE_HUNG in rig.speaker.texts
    assert client.pid != stopped
    assert not Path(f"/proc/{stopped}").exists()  # killed and reaped: not even a zombie is left
    assert controller.conversation.entries[: len(kept)] == kept
    assert controller.state.value == "idle"
    wait_ready(qtbot, client)  # the new engine was sent the model again
    with qtbot.waitSignal(controller.answer_finished, timeout=60000) as answer:
        controller.ask("Tell me more.")
    assert answer.args[0].strip()


@pytest.mark.system
def test_a_slow_request_is_not_mistaken_for_a_hang(qtbot, monkeypatch) -> None:  # noqa: ANN001
    """The real serving loop busy in pure Python (holding the interpreter as a long prefill or CPU
    load would) for three times the hang timeout: the heartbeat thread keeps the engine alive."""
    seconds = 6.0

    def slow_transcribe(self, request: Transcribe) -> None:  # noqa: ANN001
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
        self.send(Transcribed(request.request_id, "heard", seconds))

    monkeypatch.setattr(worker._Session, "transcribe", slow_transcribe)
    client = EngineClient(thread_launcher(worker.serve), hang_timeout=2.0)
    deaths: list[str] = []
    client.hung.connect(lambda: deaths.append("hung"))
    client.died.connect(lambda: deaths.append("died"))
    client.start()
    try:
        qtbot.waitUntil(lambda: client._reader.heartbeats, timeout=5000)  # the watchdog is armed
        with qtbot.waitSignal(client.event, timeout=20000, check_params_cb=lambda e: isinstance(e, Transcribed)):
            client.send(Transcribe(1, b"unused"))
        assert deaths == []
    finally:
        client.shutdown()


def test_heartbeats_come_from_the_start_and_never_reach_the_controller(qtbot) -> None:  # noqa: ANN001
    handle = run_in_thread(worker.serve)
    try:
        assert handle.conn.poll(5) and isinstance(handle.conn.recv(), Heartbeat)
    finally:
        handle.stop()
    client = EngineClient(thread_launcher(worker.serve))
    seen: list[object] = []
    client.event.connect(seen.append)
    client.start()
    try:
        qtbot.wait(2500)
        assert client._reader.heartbeats and seen == []
    finally:
        client.shutdown()


def test_after_giving_up_the_restart_command_tries_again(qtbot, new_rig) -> None:  # noqa: ANN001
    engine = ScriptedEngine(die_after_deltas=1)
    rig = new_rig(engine)
    rig.client.max_restarts = 1
    with qtbot.waitSignal(rig.controller.answer_finished, timeout=5000):
        rig.controller.handle_action("describe_screen")  # dies: restarted
    qtbot.waitUntil(lambda: rig.client.running, timeout=5000)
    with qtbot.waitSignal(rig.client.gave_up, timeout=5000):
        rig.controller.ask("What else?")  # dies again: given up
    assert rig.speaker.texts[-1] == messages.ENGINE_GAVE_UP and not rig.client.running
    assert not rig.controller.ask("What else?") and rig.speaker.texts[-1] == messages.ENGINE_NOT_RUNNING

    engine.die_after_deltas = None
    rig.controller.handle_action("restart_engine")
    assert rig.speaker.texts[-1] == messages.ENGINE_STARTING_AGAIN and rig.client.running
    with qtbot.waitSignal(rig.controller.answer_finished, timeout=5000) as answer:
        rig.controller.ask("What else?")
    assert answer.args[0] == engine.answer
    rig.controller.handle_action("restart_engine")  # running: nothing to do, and it says so
    assert rig.speaker.texts[-1] == messages.ENGINE_RUNNING
