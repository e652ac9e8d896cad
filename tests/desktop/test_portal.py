"""Wayland: hotkeys and capture through the XDG portals, against a fake portal service
(tests/fake_portal.py) on a private session bus (a real dbus-daemon, real D-Bus messages)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from desktop import capture, portal
from desktop.hotkeys import HotkeyService

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="dbus-daemon not installed")


def _bus(tmp_path: Path, monkeypatch, *args: str):  # noqa: ANN001, ANN202
    picture = tmp_path / "screen.png"
    image = Image.new("RGB", (640, 480), "white")
    image.paste((200, 30, 30), (100, 100, 300, 200))
    image.save(picture)
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                              stdout=subprocess.PIPE, text=True)
    address = daemon.stdout.readline().strip()
    fake = subprocess.Popen([sys.executable, "-m", "tests.fake_portal", address, str(picture), *args], cwd=ROOT)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-lumen-test")
    deadline = time.monotonic() + 10
    while not portal.has_interface(portal.SCREENSHOT):
        assert time.monotonic() < deadline, "the fake portal did not start"
        time.sleep(0.1)
    return daemon, fake, image


@pytest.fixture
def fake_portal(tmp_path, monkeypatch):  # noqa: ANN001
    daemon, fake, image = _bus(tmp_path, monkeypatch)
    yield image
    fake.kill()
    daemon.kill()
    fake.wait()
    daemon.wait()


@pytest.fixture
def portal_without_shortcuts(tmp_path, monkeypatch):  # noqa: ANN001
    daemon, fake, image = _bus(tmp_path, monkeypatch, "--no-shortcuts")
    yield image
    fake.kill()
    daemon.kill()
    fake.wait()
    daemon.wait()


def control(method: str, *args: str):  # noqa: ANN201
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    with open_dbus_connection(bus="SESSION") as conn:
        address = DBusAddress(portal.PATH, bus_name=portal.BUS_NAME, interface="org.lumen.FakePortal")
        reply = conn.send_and_get_reply(new_method_call(address, method, "s" * len(args), args), timeout=5)
    return json.loads(reply.body[0]) if reply.body else None


def test_wayland_capture_goes_through_the_screenshot_portal_and_leaves_no_file(fake_portal, monkeypatch) -> None:  # noqa: ANN001
    """XWayland sets DISPLAY: mss used to grab a black or partial screen there."""
    monkeypatch.setenv("DISPLAY", ":99")
    written = []
    real = portal.screenshot

    def spy() -> bytes:
        data = real()
        written.extend(Path("/tmp").glob("tmp*/Screenshot.png"))
        return data

    monkeypatch.setattr(portal, "screenshot", spy)
    assert capture.capture_supported()
    shot = capture.grab()
    assert shot.size == (640, 480) and shot.to_pil().getpixel((150, 150)) == (200, 30, 30)
    region = capture.grab(capture.Rect(100, 100, 200, 100), "region")
    assert region.size == (200, 100) and region.to_pil().getcolors() == [(200 * 100, (200, 30, 30))]
    assert not written  # the portal's file is deleted once read: no screen image stays on disk


def test_wayland_hotkeys_through_the_global_shortcuts_portal(fake_portal, qtbot) -> None:  # noqa: ANN001
    service = HotkeyService()
    try:
        assert service.start({"describe_screen": "Ctrl+Shift+F5", "voice": "Meta+Alt+V", "ask": ""})
        qtbot.waitUntil(lambda: bool(control("State")["bound"]), timeout=5000)
        state = control("State")
        assert state["bound"] == [["lumen-1", {"description": "ctrl+shift+f5", "preferred_trigger": "CTRL+SHIFT+F5"}],
                                  ["lumen-2", {"description": "alt+meta+v", "preferred_trigger": "ALT+LOGO+v"}]]
        with qtbot.waitSignal(service.activated, timeout=5000) as activated:
            control("Press", "lumen-2")
        with qtbot.waitSignal(service.released, timeout=5000) as released:
            control("Release", "lumen-2")
        assert activated.args == released.args == ["voice"]
        with qtbot.waitSignal(service.modal_refused) as refused:  # no bare letters on Wayland
            service.begin_modal()
        assert "Wayland" in refused.args[0] and not service.modal
    finally:
        service.stop()
    assert control("State")["closed"] == [state["session"]]  # the portal session is closed on stop


def test_wayland_without_a_shortcuts_portal_says_so(portal_without_shortcuts, monkeypatch, qtbot) -> None:  # noqa: ANN001
    monkeypatch.setenv("DISPLAY", ":99")  # XWayland: used to count as X11
    service = HotkeyService()
    with qtbot.waitSignal(service.unavailable) as blocker:
        assert not service.start({"stop": "Ctrl+Shift+F11"})
    assert "Wayland" in blocker.args[0] and "portal" in blocker.args[0]
