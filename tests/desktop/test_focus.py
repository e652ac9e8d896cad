"""Describe the focused control: found through AT-SPI for real (a private D-Bus session with its own
accessibility bus, on Xvfb), and through GetGUIThreadInfo against a recorded fake of user32."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import focus, messages
from desktop.capture import Rect

HERE = Path(__file__).resolve().parent
LAUNCHER = "/usr/libexec/at-spi-bus-launcher"


@pytest.mark.display
@pytest.mark.skipif(not (shutil.which("dbus-run-session") and Path(LAUNCHER).exists()),
                    reason="needs dbus-run-session and at-spi2-core")
@pytest.mark.system
def test_describe_focus_captures_the_focused_field_found_through_atspi(tmp_path) -> None:  # noqa: ANN001
    script = (f"{LAUNCHER} --launch-immediately & sleep 0.5; "
              f"{sys.executable} {HERE / 'atspi_focus_app.py'} {tmp_path}")
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1",
           "LUMEN_CONFIG_DIR": str(tmp_path)}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    done = subprocess.run(["dbus-run-session", "--", "sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=90, cwd=HERE.parents[1])
    assert (tmp_path / "result.json").exists(), done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    x, y, w, h = result["field"]
    expected = focus._at_least(Rect(x, y, w, h), focus.MIN_SIDE)
    assert result["grabs"] == [[[expected.left, expected.top, expected.width, expected.height], "focused control"]]
    assert messages.DESCRIBING_FOCUS in result["spoken"]
    assert messages.NO_FOCUSED_CONTROL not in result["spoken"]


class RecordedUser32:
    def __init__(self, focus_hwnd: int, rect: tuple[int, int, int, int]) -> None:
        self.calls, self.hwnd, self.rect = [], focus_hwnd, rect

    def GetGUIThreadInfo(self, thread, info):  # noqa: ANN001, ANN201, N802
        self.calls.append(("GetGUIThreadInfo", thread, info._obj.cbSize))
        info._obj.hwndFocus = self.hwnd
        return 1

    def GetWindowRect(self, hwnd, rect):  # noqa: ANN001, ANN201, N802
        self.calls.append(("GetWindowRect", hwnd))
        rect._obj.left, rect._obj.top, rect._obj.right, rect._obj.bottom = self.rect
        return 1


def test_windows_focus_from_the_foreground_thread() -> None:
    user32 = RecordedUser32(0x1234, (100, 200, 400, 230))
    assert focus._windows_focus(user32) == Rect(100, 200, 300, 30)
    size = 72 if ctypes.sizeof(ctypes.c_void_p) == 8 else 48  # sizeof(GUITHREADINFO)
    assert user32.calls == [("GetGUIThreadInfo", 0, size), ("GetWindowRect", 0x1234)]
    assert focus._windows_focus(RecordedUser32(0, (0, 0, 0, 0))) is None  # no focus: unknown


def test_a_small_control_is_captured_with_some_surroundings() -> None:
    assert focus._at_least(Rect(100, 100, 16, 16), 64) == Rect(76, 76, 64, 64)
    assert focus._at_least(Rect(0, 0, 300, 30), 64) == Rect(0, -17, 300, 64)


def test_no_focused_control_found_describes_the_screen_and_says_so(rig, qtbot, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(focus, "focused_rect", lambda: None)  # e.g. macOS, or no accessibility bus
    with qtbot.waitSignal(rig.controller.answer_finished, timeout=10000):
        rig.controller.handle_action("describe_focus")
    assert rig.grabber.grabs == [(None, "screen")]
    assert messages.NO_FOCUSED_CONTROL in [text for text, _ in rig.speaker.spoken]


class RecordedAX:
    """ApplicationServices/CoreFoundation as documented: CF objects are ints, every Copy/Create is
    balanced by CFRelease (the fake checks that nothing leaks)."""

    SYSTEM, FOCUSED, POSITION, SIZE = 0x100, 0x200, 0x300, 0x400

    def __init__(self, trusted: bool = True, focused: bool = True) -> None:
        self.trusted, self.focused, self.calls, self.live, self.strings = trusted, focused, [], set(), {}

    def AXIsProcessTrusted(self) -> bool:  # noqa: N802
        return self.trusted

    def AXUIElementCreateSystemWide(self) -> int:  # noqa: N802
        self.live.add(self.SYSTEM)
        return self.SYSTEM

    def CFStringCreateWithCString(self, allocator, text, encoding) -> int:  # noqa: ANN001, N802
        assert allocator is None and encoding == focus.K_CF_STRING_ENCODING_UTF8
        ref = 0x1000 + len(self.strings)
        self.strings[ref] = text
        self.live.add(ref)
        return ref

    def AXUIElementCopyAttributeValue(self, element, key, out) -> int:  # noqa: ANN001, N802
        name = self.strings[key]
        self.calls.append((element, name))
        answers = {(self.SYSTEM, b"AXFocusedUIElement"): self.FOCUSED if self.focused else None,
                   (self.FOCUSED, b"AXPosition"): self.POSITION, (self.FOCUSED, b"AXSize"): self.SIZE}
        value = answers.get((element, name))
        if value is None:
            return -25212  # kAXErrorNoValue
        out._obj.value = value
        self.live.add(value)
        return 0

    def AXValueGetValue(self, value, kind, out) -> bool:  # noqa: ANN001, N802
        if (value, kind) == (self.POSITION, focus.K_AX_VALUE_CGPOINT):
            out._obj.x, out._obj.y = 120.0, 340.5
        elif (value, kind) == (self.SIZE, focus.K_AX_VALUE_CGSIZE):
            out._obj.width, out._obj.height = 240.0, 22.0
        else:
            return False
        return True

    def CFRelease(self, ref) -> None:  # noqa: ANN001, N802
        self.live.remove(ref)


def test_macos_focus_through_the_accessibility_api() -> None:
    ax = RecordedAX()
    assert focus._mac_focus(ax) == Rect(120, 340, 240, 22)
    assert ax.calls == [(ax.SYSTEM, b"AXFocusedUIElement"), (ax.FOCUSED, b"AXPosition"), (ax.FOCUSED, b"AXSize")]
    assert not ax.live  # everything copied or created was released
    nothing = RecordedAX(focused=False)
    assert focus._mac_focus(nothing) is None and not nothing.live
    untrusted = RecordedAX(trusted=False)
    assert focus._mac_focus(untrusted) is None and untrusted.calls == []


class RecordedAutomation:
    """IUIAutomation as comtypes presents it: GetFocusedElement() -> element whose
    CurrentBoundingRectangle is a tagRECT (left, top, right, bottom); a COMError when nothing has focus."""

    def __init__(self, rect: tuple[int, int, int, int] | None) -> None:
        self.rect, self.calls = rect, []

    def GetFocusedElement(self):  # noqa: ANN201, N802
        self.calls.append("GetFocusedElement")
        if self.rect is None:
            raise OSError(-2147220991, "no focused element")  # UIA_E_ELEMENTNOTAVAILABLE, as COMError
        bounds = focus._RECT(*self.rect)
        return type("Element", (), {"CurrentBoundingRectangle": bounds})()


def test_windows_focus_through_ui_automation_first() -> None:
    automation = RecordedAutomation((300, 400, 540, 424))  # an edit field inside a browser page
    assert focus._uia_focus(automation) == Rect(300, 400, 240, 24) and automation.calls == ["GetFocusedElement"]
    assert focus._uia_focus(RecordedAutomation(None)) is None  # then GetGUIThreadInfo is asked


class RecordedHIServices:
    """pyobjc's ApplicationServices: AXIsProcessTrustedWithOptions({kAXTrustedCheckOptionPrompt: bool})."""

    kAXTrustedCheckOptionPrompt = "AXTrustedCheckOptionPrompt"

    def __init__(self, trusted: bool) -> None:
        self.trusted, self.calls = trusted, []

    def AXIsProcessTrustedWithOptions(self, options: dict) -> bool:  # noqa: N802
        self.calls.append(options)
        return self.trusted


def test_macos_accessibility_permission_is_checked_and_requested() -> None:
    from desktop.session import accessibility_allowed

    granted = RecordedHIServices(True)
    assert accessibility_allowed(hi=granted) and granted.calls == [{"AXTrustedCheckOptionPrompt": False}]
    denied = RecordedHIServices(False)
    assert not accessibility_allowed(request=True, hi=denied)
    assert denied.calls == [{"AXTrustedCheckOptionPrompt": True}]  # macOS shows its prompt


def test_without_accessibility_permission_lumen_says_what_to_enable_and_grabs_nothing(rig, qtbot, monkeypatch) -> None:  # noqa: ANN001
    from desktop import session

    asked = []
    monkeypatch.setattr(session, "session_type", lambda: "macos")
    monkeypatch.setattr(session, "accessibility_allowed", lambda request=False, hi=None: asked.append(request) or False)
    with qtbot.waitSignal(rig.controller.status, timeout=5000,
                          check_params_cb=lambda text: text == messages.ACCESSIBILITY_DENIED):
        rig.controller.handle_action("describe_focus")
    assert asked == [True] and rig.grabber.grabs == []
    assert messages.ACCESSIBILITY_DENIED in [text for text, _ in rig.speaker.spoken]


def test_on_wayland_lumen_says_wayland_cannot_tell_instead_of_not_found(rig, qtbot, monkeypatch) -> None:  # noqa: ANN001
    """No Wayland client may know the active window, the mouse or its controls' screen positions
    (AT-SPI's "screen" extents are window-relative there): the real locators give up without
    asking X or AT-SPI, and the user hears why the whole screen is described."""
    from desktop import session

    monkeypatch.setattr(session, "session_type", lambda: "wayland")
    for action, target in (("describe_window", "window"), ("describe_monitor", "monitor"),
                           ("describe_focus", "focus")):
        with qtbot.waitSignal(rig.controller.answer_finished, timeout=10000):
            rig.controller.handle_action(action)
        assert rig.grabber.grabs[-1] == (None, "screen")
        said = [text for text, _ in rig.speaker.spoken]
        assert messages.WAYLAND_WHOLE_SCREEN[target] in said and "Wayland" in messages.WAYLAND_WHOLE_SCREEN[target]
        assert messages.NO_ACTIVE_WINDOW not in said and messages.NO_FOCUSED_CONTROL not in said
        rig.speaker.spoken.clear()


def test_on_wayland_the_region_grid_says_wayland_not_capture_unavailable(rig, qtbot, monkeypatch) -> None:  # noqa: ANN001
    """Without XWayland mss raised "no X11 display" and the user heard that capture was unavailable,
    though the screenshot portal works; with it, the grid cut XWayland's idea of the screen."""
    from desktop import session

    monkeypatch.setattr(session, "session_type", lambda: "wayland")
    monkeypatch.delenv("DISPLAY", raising=False)
    with qtbot.waitSignal(rig.controller.status, timeout=5000,
                          check_params_cb=lambda text: text == messages.WAYLAND_NO_REGION):
        rig.controller.handle_action("region")
    assert not rig.controller.keys.active and rig.grabber.grabs == []
