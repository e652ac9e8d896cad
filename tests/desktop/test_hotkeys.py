"""Hotkey bindings (pure) and, under Xvfb, real global hotkeys fired with xdotool."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from desktop import capture
from desktop.hotkeys import HotkeyService, check_bindings, parse
from desktop.settings import Hotkeys
from engine.protocol import Describe
from tests.desktop.conftest import make_rig
from tests.fakes import ScriptedEngine


def test_parse_and_pynput_form() -> None:
    assert parse("Ctrl+Shift+F5").to_pynput() == "<ctrl>+<shift>+<f5>"
    assert parse("Meta+Alt+PgDown").to_pynput() == "<alt>+<cmd>+<page_down>"
    assert parse("Ctrl+Shift+L").to_pynput() == "<ctrl>+<shift>+l"
    for bad in ("", "Ctrl+", "Ctrl+Shift", "Hyper+X", "Ctrl+Blorp"):
        with pytest.raises(ValueError):
            parse(bad)


def test_defaults_are_valid_and_conflicts_are_explained() -> None:
    assert check_bindings(dict(Hotkeys().items())) == []
    problems = check_bindings({
        "describe_screen": "Ctrl+Shift+F5", "stop": "ctrl+shift+f5",  # duplicate (case-insensitive)
        "ask": "Ctrl+Alt+Q",  # AltGr
        "recall": "Insert+A",  # not even a modifier; and a screen reader key
        "region": "Ctrl+C",  # reserved
        "describe_window": "F5",  # bare key
        "command": "CapsLock",
    })
    text = " ".join(problems)
    assert "used for both describe_screen and stop" in text
    assert "AltGr" in text and "reserved" in text and "needs Ctrl, Alt" in text
    assert "screen reader key" in text and "Insert+A for recall is not a valid" in text
    assert check_bindings({"stop": "F13"}) == []  # F13+ are free on every desktop


def test_unavailable_without_display(monkeypatch, qtbot) -> None:  # noqa: ANN001
    monkeypatch.delenv("DISPLAY", raising=False)
    service = HotkeyService()
    with qtbot.waitSignal(service.unavailable) as blocker:
        assert not service.start({"stop": "Ctrl+Shift+F11"})
    assert "Wayland" in blocker.args[0]


def xdotool(*keys: str) -> None:
    subprocess.run(["xdotool", "key", "--delay", "30", *keys], check=True, timeout=10)


@pytest.fixture
def screen_content(qtbot):  # noqa: ANN001
    """Something on the otherwise black Xvfb screen, so the capture is not refused as blank."""
    from PySide6.QtWidgets import QLabel

    label = QLabel("<h1>Invoice 2041</h1><p>Total due: 120 euros</p>")
    label.setStyleSheet("background: white; color: black; padding: 40px")
    label.setGeometry(100, 100, 600, 300)
    qtbot.addWidget(label)
    label.show()
    qtbot.waitExposed(label)
    white = (255, 255, 255)
    qtbot.waitUntil(lambda: capture.grab(capture.Rect(150, 150, 1, 1)).to_pil().getpixel((0, 0)) == white,
                    timeout=3000)
    return label


@pytest.mark.display
@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool not installed")
def test_real_hotkey_triggers_a_real_capture(qtbot, screen_content) -> None:  # noqa: ANN001
    rig = make_rig(ScriptedEngine(), grabber=capture.grab)
    service = HotkeyService()
    service.activated.connect(rig.controller.handle_action)
    service.key.connect(rig.controller.keys.key)
    rig.controller.modal_requested.connect(lambda on: service.begin_modal() if on else service.end_modal())
    try:
        assert service.start({"describe_screen": "Ctrl+Shift+F5", "command": "Ctrl+Shift+F12",
                              "voice": "Ctrl+Shift+F2"})
        with qtbot.waitSignal(rig.controller.answer_finished, timeout=10000):
            xdotool("ctrl+shift+F5")
        request = next(r for r in rig.engine.requests if isinstance(r, Describe))
        whole, _ = capture.monitors()
        image = request.images[0]
        assert image.encoding == "rgb" and image.size == (whole.width, whole.height)
        pixel = (150 * whole.width + 150) * 3  # inside the white label
        assert image.data[pixel:pixel + 3] == b"\xff\xff\xff"

        # The layered command key: Ctrl+Shift+F12, then "s"; the keyboard is grabbed meanwhile.
        with qtbot.waitSignal(rig.controller.answer_finished, timeout=10000):
            xdotool("ctrl+shift+F12")
            qtbot.waitUntil(lambda: service.modal, timeout=3000)
            xdotool("s")
        assert sum(isinstance(r, Describe) for r in rig.engine.requests) == 2
        assert not service.modal

        # Push-to-talk needs the release too.
        with qtbot.waitSignal(service.activated, timeout=5000, check_params_cb=lambda a: a == "voice"):
            subprocess.run(["xdotool", "keydown", "ctrl+shift+F2"], check=True, timeout=10)
        with qtbot.waitSignal(service.released, timeout=5000, check_params_cb=lambda a: a == "voice"):
            subprocess.run(["xdotool", "keyup", "ctrl+shift+F2"], check=True, timeout=10)
    finally:
        service.stop()
        rig.client.shutdown()


@pytest.mark.display
def test_a_combination_grabbed_by_another_program_is_reported(qtbot) -> None:  # noqa: ANN001
    from Xlib import XK, X, display

    other = display.Display()  # "another program" holding Ctrl+Shift+F7
    root = other.screen().root
    keycode = other.keysym_to_keycode(XK.string_to_keysym("F7"))
    root.grab_key(keycode, X.ControlMask | X.ShiftMask, False, X.GrabModeAsync, X.GrabModeAsync)
    other.sync()
    service = HotkeyService()
    try:
        with qtbot.waitSignal(service.taken, timeout=5000) as blocker:
            assert service.start({"describe_monitor": "Ctrl+Shift+F7", "stop": "Ctrl+Shift+F11"})
        assert blocker.args == ["Ctrl+Shift+F7"]
        from desktop.hotkeys import x11_taken

        assert x11_taken({"stop": "Ctrl+Shift+F11", "m": "Ctrl+Shift+F7"}) == ["Ctrl+Shift+F7"]
    finally:
        service.stop()
        other.close()
    from desktop.hotkeys import x11_taken

    assert x11_taken({"m": "Ctrl+Shift+F7"}) == []  # released when the other program quits


@pytest.mark.display
def test_stopping_ends_the_listeners_and_releases_the_keyboard(qtbot) -> None:  # noqa: ANN001
    """pynput's X11 listener used to run on (and a modal one to keep the keyboard grabbed) until
    the next key event; stop() then blocked the GUI thread for its 1 s join timeout."""
    from Xlib import X, display

    service = HotkeyService()
    assert service.start({"stop": "Ctrl+Shift+F11"})
    listener = service._listener
    service.begin_modal()
    modal = service._modal
    assert modal is not None and modal.is_alive()
    service.end_modal()
    assert not modal.is_alive()
    other = display.Display()
    try:  # another client can grab the keyboard again: the modal grab is gone
        status = other.screen().root.grab_keyboard(False, X.GrabModeAsync, X.GrabModeAsync, X.CurrentTime)
        assert status == X.GrabSuccess
        other.ungrab_keyboard(X.CurrentTime)
        other.sync()
    finally:
        other.close()
    service.stop()
    assert not listener.is_alive() and not service.running
