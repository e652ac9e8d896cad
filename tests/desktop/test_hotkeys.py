"""Hotkey bindings (pure); under Xvfb, real X11 grabs fired with xdotool while another client has
the focus; the Windows and macOS registrations against recorded fakes of their native calls."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from desktop import capture
from desktop.hotkeys import Combo, HotkeyService, check_bindings, parse
from desktop.settings import Hotkeys
from engine.protocol import Describe
from tests.desktop.conftest import make_rig
from tests.fakes import ScriptedEngine


def test_parse() -> None:
    assert parse("Ctrl+Shift+F5") == Combo(frozenset({"ctrl", "shift"}), "f5")
    assert parse("Meta+Alt+PgDown").normal() == "alt+meta+page_down"
    assert parse("Win+Esc").normal() == "meta+escape"
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


def test_wayland_is_named_even_though_xwayland_sets_display(monkeypatch, qtbot) -> None:  # noqa: ANN001
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    service = HotkeyService()
    with qtbot.waitSignal(service.unavailable) as blocker:
        assert not service.start({"stop": "Ctrl+Shift+F11"})
    assert "Wayland session" in blocker.args[0]


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


class FocusedClient:
    """An xev-like X client: a focused window that records the keys it receives."""

    def __init__(self) -> None:
        from Xlib import X, display

        self.X, self.d = X, display.Display()
        root = self.d.screen().root
        self.window = root.create_window(0, 0, 200, 200, 0, self.d.screen().root_depth,
                                         event_mask=X.KeyPressMask | X.KeyReleaseMask | X.FocusChangeMask)
        self.window.map()
        self.d.sync()
        self.focus()

    def focus(self) -> None:
        self.window.set_input_focus(self.X.RevertToParent, self.X.CurrentTime)
        self.d.sync()

    def keys(self) -> list[str]:
        from Xlib import XK

        names = {getattr(XK, n): n[3:] for n in dir(XK) if n.startswith("XK_")}
        received = []
        while self.d.pending_events():
            event = self.d.next_event()
            if event.type == self.X.KeyPress:
                received.append(names.get(self.d.keycode_to_keysym(event.detail, 0), "?"))
        return received

    def close(self) -> None:
        self.window.destroy()
        self.d.close()


@pytest.mark.display
@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool not installed")
def test_a_key_lumen_handles_never_reaches_the_focused_application(qtbot) -> None:  # noqa: ANN001
    """The pynput hook only observed: the focused application also got Ctrl+Shift+F5."""
    client = FocusedClient()
    service = HotkeyService()
    pressed = []
    service.key.connect(pressed.append)
    try:
        assert service.start({"describe_screen": "Ctrl+Shift+F5"})
        with qtbot.waitSignal(service.activated, timeout=5000):
            xdotool("ctrl+shift+F5")
        xdotool("ctrl+shift+F6")  # not Lumen's: the client gets it, so it does receive keys
        client.seen = []
        qtbot.waitUntil(lambda: client.seen.extend(client.keys()) or "F6" in client.seen, timeout=3000)
        assert "F5" not in client.seen

        service.begin_modal()  # the command layer: its letters are Lumen's until it closes
        with qtbot.waitSignal(service.key, timeout=5000):
            xdotool("s")
        xdotool("KP_7", "z")
        qtbot.waitUntil(lambda: client.seen.extend(client.keys()) or "z" in client.seen, timeout=3000)
        qtbot.waitUntil(lambda: pressed == ["s", "7"], timeout=3000)
        assert "s" not in client.seen and "KP_Home" not in client.seen and "KP_7" not in client.seen
        service.end_modal()
        xdotool("s")  # back to the application once the layer is closed
        qtbot.waitUntil(lambda: client.seen.extend(client.keys()) or "s" in client.seen, timeout=3000)
        assert pressed == ["s", "7"]
    finally:
        service.stop()
        client.close()


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
        assert blocker.args == ["Ctrl+Shift+F7", "describe_monitor"]
    finally:
        service.stop()
        other.close()
    with qtbot.assertNotEmitted(service.taken):  # free again once the other program quits
        assert service.start({"describe_monitor": "Ctrl+Shift+F7"})
    service.stop()


@pytest.mark.display
def test_stopping_releases_every_grab(qtbot) -> None:  # noqa: ANN001
    from Xlib import XK, X, display, error

    service = HotkeyService()
    assert service.start({"stop": "Ctrl+Shift+F11"})
    service.begin_modal()
    service.stop()
    assert not service.running and not service.modal
    other = display.Display()
    try:  # another client can now take the very keys Lumen held
        root = other.screen().root
        catchers = []
        for key, mods in (("F11", X.ControlMask | X.ShiftMask), ("s", X.AnyModifier)):
            catchers.append(error.CatchError(error.BadAccess))
            root.grab_key(other.keysym_to_keycode(XK.string_to_keysym(key)), mods, False, X.GrabModeAsync,
                          X.GrabModeAsync, onerror=catchers[-1])
        other.sync()
        assert not any(c.get_error() for c in catchers)
    finally:
        other.close()
