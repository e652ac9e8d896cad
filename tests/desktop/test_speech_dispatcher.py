"""Linux, for real: Lumen's speech reaches a running Speech Dispatcher server (the one Orca < 49
speaks with), Stop cancels it there, and with the desktop's screen-reader flag on but no reader
running the own voice speaks. Real programs: dbus-daemon, at-spi-bus-launcher, pulseaudio (null
sink), speech-dispatcher with an output module that writes each text to a file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop import messages
from desktop.settings import SpeechOutput
from desktop.speech_output import ReaderWatch, linux, probe
from tests.desktop.conftest import make_rig
from tests.desktop.reader_rigs import (
    GENERIC, LAUNCHER, Procs, set_screen_reader_flag, spoken_lines, start_session_bus, start_speech_dispatcher,
    wait_for,
)
from tests.fakes import ScriptedEngine

HERE = Path(__file__).resolve().parent
_MISSING = [p for p in ("dbus-daemon", "pulseaudio", "speech-dispatcher", GENERIC, LAUNCHER)
            if not (shutil.which(p) or Path(p).exists())]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"needs {', '.join(_MISSING)} (scripts/setup.sh --dev installs them)")
SENTENCES = ["A window with a button.", "The button says OK.", "Nothing else is visible."]


@pytest.fixture
def speechd(tmp_path, monkeypatch):  # noqa: ANN001
    procs = Procs()
    work = Path(tmp_path)
    try:
        env = start_session_bus(procs, work, accessibility=True)
        spoken = start_speech_dispatcher(procs, work, env)
        for key in ("DBUS_SESSION_BUS_ADDRESS", "SPEECHD_ADDRESS", "XDG_RUNTIME_DIR", "PULSE_SERVER"):
            monkeypatch.setenv(key, env[key])
        yield work, env, spoken, procs
    finally:
        procs.stop()


def stand_in_orca(procs: Procs, work: Path, env: dict[str, str]) -> None:
    """A process named orca (as Orca's own script is), for detection without Orca's start-up time;
    test_orca.py runs the real one."""
    shutil.copy("/bin/sleep", work / "orca")
    procs.start([str(work / "orca"), "120"], env, work / "orca.log")
    wait_for(linux.orca_running, 5, "the orca process")


def test_the_ssip_client_speaks_in_order_and_escapes_what_ssip_would_misread(speechd) -> None:  # noqa: ANN001
    _, _, spoken, _ = speechd
    reader = linux.SpeechDispatcher()
    try:
        reader.speak("It's a cat.")
        reader.speak(".")  # a lone dot would end SPEAK's data if it were not doubled
        reader.speak("Ünïcode — fine.")
        wait_for(lambda: len(spoken_lines(spoken)) >= 3, 10, "three texts spoken")
    finally:
        reader.close()
    assert spoken_lines(spoken) == ["It's a cat.", ".", "Ünïcode — fine."]


def test_lumens_answer_reaches_speech_dispatcher_and_stop_cancels_it(speechd, qtbot) -> None:  # noqa: ANN001
    work, env, spoken, procs = speechd
    stand_in_orca(procs, work, env)
    assert probe().kind == "orca-speechd"
    rig = make_rig(ScriptedEngine(), readers=ReaderWatch(), speech_output=SpeechOutput.AUTO)
    try:
        rig.controller.handle_action("describe_screen")
        qtbot.waitUntil(lambda: rig.controller.state.value == "idle" and bool(rig.controller.conversation.last_answer),
                        timeout=10000)
        wait_for(lambda: len(spoken_lines(spoken)) >= 5, 15, "the acknowledgement, the answer and Done")
        assert spoken_lines(spoken) == [messages.DESCRIBING_SCREEN, *SENTENCES, messages.DONE]
        assert rig.speaker.texts == []  # the reader said it: no double speech

        rig.controller.handle_action("describe_screen")
        qtbot.waitUntil(lambda: len(spoken_lines(spoken)) >= 7, timeout=15000)  # the ack and the first sentence
        rig.controller.handle_action("stop")
        qtbot.wait(2000)  # each text takes 0.4 s in the output module: a queue left would have been heard
        again = spoken_lines(spoken)[5:]
        assert again[:2] == [messages.DESCRIBING_SCREEN, SENTENCES[0]]
        assert not set(again) & {*SENTENCES[1:], messages.DONE}, again  # only Stop's own word may follow
    finally:
        rig.client.shutdown()
        rig.reader.forget()


def test_a_server_that_goes_away_falls_back_to_the_own_voice(speechd, qtbot) -> None:  # noqa: ANN001
    work, env, spoken, procs = speechd
    stand_in_orca(procs, work, env)
    rig = make_rig(ScriptedEngine(), readers=ReaderWatch(), speech_output=SpeechOutput.SCREEN_READER)
    try:
        rig.controller.notify("First.")
        wait_for(lambda: spoken_lines(spoken) == ["First."], 10, "the first message")
        next(p for p in procs.started if "speech-dispatcher" in p.args).terminate()
        time.sleep(0.5)
        rig.controller.notify("Second.")
        assert rig.speaker.texts == ["Second."]
    finally:
        rig.client.shutdown()
        rig.reader.forget()


@pytest.mark.display
def test_accessibility_flag_on_and_no_reader_running_means_the_own_voice_speaks(speechd) -> None:  # noqa: ANN001
    """The real app in its own process, with Qt's AT-SPI bridge on (as on a GNOME desktop with the
    screen-reader switch on) and no reader running: everything must come out of the own voice."""
    work, env, spoken, _ = speechd
    set_screen_reader_flag(env, True)
    assert linux.screen_reader_flag() is True
    found = probe()
    assert found.kind is None and "no screen reader is running" in found.note
    (work / "go").touch()
    run_env = {**env, "QT_QPA_PLATFORM": "xcb",  # xcb: Qt's AT-SPI bridge (offscreen has none), on Xvfb
               "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1", "LUMEN_CONFIG_DIR": str(work)}
    result = subprocess.run([sys.executable, str(HERE / "reader_app.py"), str(work), "auto"], env=run_env,
                            capture_output=True, text=True, timeout=90, cwd=HERE.parents[1])
    assert (work / "voice.json").exists(), result.stderr[-3000:]
    voice = json.loads((work / "voice.json").read_text())
    # Before the speech-output layer, QAccessible.isActive() (true here) sent all of this to a reader
    # that does not exist: the voice said only "Loading the model" (measured).
    assert messages.DESCRIBING_SCREEN in voice and "A clock shows noon." in voice
    assert any(text.startswith("Model ready") for text in voice)
    assert spoken_lines(spoken) == []
