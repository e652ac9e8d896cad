"""How a screen reader sees Lumen: a real AT-SPI client reads the controls and hears announcements.

Runs the app and a pyatspi client (system python3, as Orca does) in a private D-Bus session with
its own accessibility bus, on the Xvfb display (AT-SPI needs xcb; offscreen has no bridge).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import messages
from tests.fakes import ScriptedEngine

HERE = Path(__file__).resolve().parent
LAUNCHER = "/usr/libexec/at-spi-bus-launcher"
SYSTEM_PY = "/usr/bin/python3"


def _have_pyatspi() -> bool:
    if not Path(SYSTEM_PY).exists():
        return False
    return subprocess.run([SYSTEM_PY, "-c", "import pyatspi"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.display,
    pytest.mark.skipif(not (shutil.which("dbus-run-session") and Path(LAUNCHER).exists() and _have_pyatspi()),
                       reason="needs dbus-run-session, at-spi2-core and python3-pyatspi (scripts/setup.sh --dev)"),
]


@pytest.fixture(scope="module")
def atspi_run(tmp_path_factory):  # noqa: ANN001
    work = tmp_path_factory.mktemp("atspi")
    last_sentence = ScriptedEngine().answer.split(". ")[-1]
    script = (
        f"{LAUNCHER} --launch-immediately & sleep 0.5; "
        f"{SYSTEM_PY} {HERE / 'atspi_client.py'} {work} lumen-atspi-test '{last_sentence}' & "
        f"client=$!; {sys.executable} {HERE / 'atspi_app.py'} {work}; wait $client"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1",
           "LUMEN_CONFIG_DIR": str(work)}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    result = subprocess.run(["dbus-run-session", "--", "sh", "-c", script], env=env, capture_output=True,
                            text=True, timeout=90, cwd=HERE.parents[1])
    assert (work / "tree.json").exists(), result.stderr[-3000:]
    return {name: json.loads((work / f"{name}.json").read_text())
            for name in ("tree", "controls", "announcements")}


def test_every_visible_control_is_named_on_the_accessibility_bus(atspi_run) -> None:  # noqa: ANN001
    tree = atspi_run["tree"]
    names = {node.get("name") for node in tree}
    frames = {n["name"] for n in tree if n.get("role") in ("frame", "dialog")}
    assert {"Lumen", "Lumen settings", "Lumen transcript"} <= frames
    for window, controls in atspi_run["controls"].items():
        assert controls, window
        assert all(controls), f"{window}: a control without an accessible name"
        missing = [c for c in controls if c not in names]
        assert not missing, f"{window}: not on the bus: {missing}"
    described = {n["name"]: n["description"] for n in tree if n.get("role") == "push button"}
    assert described["Describe screen"] == "Capture the whole screen and describe it."
    assert any(n.get("role") == "text" and n["name"] == "Question" for n in tree)


def test_screen_reader_hears_the_acknowledgement_and_every_sentence(atspi_run) -> None:  # noqa: ANN001
    heard = [e["text"] for e in atspi_run["announcements"]]
    sentences = ["A window with a button.", "The button says OK.", "Nothing else is visible."]
    assert messages.DESCRIBING_SCREEN in heard
    assert [h for h in heard if h in sentences] == sentences  # each once, in order
    ack = next(e for e in atspi_run["announcements"] if e["text"] == messages.DESCRIBING_SCREEN)
    answer = next(e for e in atspi_run["announcements"] if e["text"] == sentences[0])
    assert ack["politeness"] != answer["politeness"]  # the acknowledgement interrupts, answers queue
    assert all(e["source"] == "Status" for e in atspi_run["announcements"])


def test_status_lines_are_readable_text(atspi_run) -> None:  # noqa: ANN001
    """A screen reader reads the status line's text, not just the word Status (main window, wizard)."""
    status = {n["window"]: n for n in atspi_run["tree"] if n.get("name") == "Status"}
    assert set(status) >= {"Lumen", "Set up a model"}
    for window, node in status.items():
        assert node["role"] == "text" and node["text"], f"{window}: the status text is not exposed: {node}"
    main = status["Lumen"]["text"]
    assert main.startswith((messages.STARTING, messages.MODEL_LOADING, "Model ready")), main


def test_hotkey_fields_say_their_current_key(atspi_run) -> None:  # noqa: ANN001
    names = {n.get("name") for n in atspi_run["tree"]}
    assert f"{messages.HOTKEY_ACTIONS['describe_screen']}: Ctrl+Shift+F5" in names
    assert f"{messages.HOTKEY_ACTIONS['stop']}: Ctrl+Shift+F11" in names
