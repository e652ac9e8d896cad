"""A real screen reader end to end: Orca 43 (Debian 12) headless on Xvfb with the AT-SPI bus,
speaking through Speech Dispatcher into a file. Another application has focus; Lumen's describe
action (what the hotkey does) must reach the Orca user's speech, Stop must silence it, and a
question typed (real X key events) into Lumen's question field must be answered through Orca.

Orca 43 has no handler for AT-SPI object:announcement, so before Lumen spoke through Speech
Dispatcher, Orca said nothing of Lumen's at all. Takes ~40 s (Orca starts in ~2-3 s).
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
from tests.desktop.reader_rigs import (
    GENERIC, LAUNCHER, Procs, set_screen_reader_flag, spoken_lines, start_session_bus, start_speech_dispatcher,
    wait_for,
)

HERE = Path(__file__).resolve().parent
_MISSING = [p for p in ("dbus-daemon", "pulseaudio", "speech-dispatcher", "orca", GENERIC, LAUNCHER)
            if not (shutil.which(p) or Path(p).exists())]
pytestmark = [pytest.mark.display,
              pytest.mark.skipif(bool(_MISSING), reason=f"needs {', '.join(_MISSING)} (scripts/setup.sh --dev)")]
ANSWER = ["A window with a button.", "The button says OK.", "Nothing else is visible.",
          "The taskbar is at the bottom.", "A clock shows noon."]


@pytest.fixture(scope="module")
def orca(tmp_path_factory):  # noqa: ANN001
    """Orca running, with another application (a notes window) focused."""
    work = tmp_path_factory.mktemp("orca")
    procs = Procs()
    try:
        env = start_session_bus(procs, work, accessibility=True)
        spoken = start_speech_dispatcher(procs, work, env, seconds_per_text=0.3)
        set_screen_reader_flag(env, True)  # what GNOME's screen-reader switch does
        (work / "prefs").mkdir()
        env.update(QT_QPA_PLATFORM="xcb", LUMEN_CONFIG_DIR=str(work))
        procs.start(["orca", "--replace", "-u", str(work / "prefs")], env, work / "orca.log")
        wait_for(lambda: "Screen reader on." in spoken_lines(spoken), 60, "Orca starting")
        focus = work / "notes-focus"
        procs.start([sys.executable, str(HERE / "other_app.py"), str(focus)], env, work / "notes.log")
        wait_for(lambda: focus.exists() and any("Note text" in line for line in spoken_lines(spoken)), 30,
                 "Orca reading the focused notes window")
        yield work, env, spoken, focus
    finally:
        procs.stop()


def run_lumen(work: Path, env: dict[str, str], *args: str) -> list[str]:
    """The real app in its own process; returns what its own voice said."""
    (work / "go").unlink(missing_ok=True)
    (work / "voice.json").unlink(missing_ok=True)
    lumen = subprocess.Popen([sys.executable, str(HERE / "reader_app.py"), str(work), "auto", *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=HERE.parents[1])
    try:
        time.sleep(1.0)  # Lumen's window is up (and must not have taken the focus)
        (work / "go").touch()
        _, err = lumen.communicate(timeout=90)
    finally:
        if lumen.poll() is None:
            lumen.kill()
            lumen.wait()
    assert (work / "voice.json").exists(), err[-3000:]
    return json.loads((work / "voice.json").read_text())


def said_after(spoken: Path, start: int, text: str) -> int:
    lines = spoken_lines(spoken)
    return lines.index(text, start) if text in lines[start:] else -1


def test_describe_hotkey_while_another_app_is_focused_is_spoken_by_orca(orca) -> None:  # noqa: ANN001
    work, env, spoken, focus = orca
    start = len(spoken_lines(spoken))
    voice = run_lumen(work, env)
    wait_for(lambda: said_after(spoken, start, ANSWER[-1]) >= 0, 20, "Orca's speech reaching the last sentence")
    lines = spoken_lines(spoken)[start:]
    ack = lines.index(messages.DESCRIBING_SCREEN)
    assert [line for line in lines[ack:] if line in ANSWER] == ANSWER  # every sentence, in order
    assert voice == []  # through the reader, not doubled by the own voice
    assert focus.read_text() == "active"  # the notes window kept the focus throughout


def test_stop_silences_what_orca_was_given(orca) -> None:  # noqa: ANN001
    work, env, spoken, _ = orca
    start = len(spoken_lines(spoken))
    run_lumen(work, env, "stop")  # Stop the moment the whole answer is with Orca's speech server
    time.sleep(2.5)  # 0.3 s per text: the rest of the answer would have been said by now
    lines = spoken_lines(spoken)[start:]
    assert messages.DESCRIBING_SCREEN in lines
    assert not any(line in ANSWER[2:] for line in lines), lines


def test_a_question_typed_in_lumens_window_is_answered_through_orca(orca) -> None:  # noqa: ANN001
    work, env, spoken, _ = orca
    start = len(spoken_lines(spoken))
    voice = run_lumen(work, env, "ask")
    wait_for(lambda: ANSWER[-1] in spoken_lines(spoken)[start:] and messages.ASKING in spoken_lines(spoken)[start:],
             20, "the answer to the typed question")
    lines = spoken_lines(spoken)[start:]
    assert "Question: text." in lines, lines  # Orca read Lumen's question field when the question key focused it
    asked = lines.index(messages.ASKING)  # the typed question was taken (Enter in the question field)
    assert [line for line in lines[asked:] if line in ANSWER] == ANSWER
    assert voice == []
