"""XDG desktop portals over D-Bus, for Wayland: Screenshot and GlobalShortcuts.

On Wayland a program may neither read the screen nor take keys itself; the desktop's portal
(xdg-desktop-portal, org.freedesktop.portal.Desktop on the session bus) does it for it, after
asking the user where the desktop wants to. D-Bus is spoken with jeepney: pure Python (nothing
to compile into the bundles, no GLib main loop), and its blocking API suits a worker thread.
Every portal request follows the Request pattern: subscribe to Response on the predictable
request path, call, wait for Response (0 = done, 1 = the user cancelled, 2 = other).
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from PySide6.QtCore import QObject, QTimer, Signal

from desktop.key_combos import Combo, Unavailable

log = logging.getLogger(__name__)

BUS_NAME = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
SCREENSHOT = "org.freedesktop.portal.Screenshot"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"


class PortalError(Exception):
    """A portal is missing, refused, or the user cancelled; the message is for the user."""


def _connect():  # noqa: ANN202 - a jeepney blocking connection
    from jeepney.io.blocking import open_dbus_connection

    try:
        return open_dbus_connection(bus="SESSION")
    except Exception as exc:  # noqa: BLE001 - no address, no socket, auth failure
        raise PortalError(f"the desktop's session bus cannot be reached ({exc})") from exc


def _address(interface: str, path: str = PATH):  # noqa: ANN202
    from jeepney import DBusAddress

    return DBusAddress(path, bus_name=BUS_NAME, interface=interface)


def _call(conn, interface: str, method: str, signature: str, body: tuple, timeout: float = 5.0,  # noqa: ANN001
          path: str = PATH):  # noqa: ANN202
    from jeepney import MessageType, new_method_call

    reply = conn.send_and_get_reply(new_method_call(_address(interface, path), method, signature, body),
                                    timeout=timeout)
    if reply.header.message_type is MessageType.error:
        raise PortalError(f"{interface}.{method} failed: {reply.body[0] if reply.body else 'error'}")
    return reply.body


def has_interface(interface: str) -> bool:
    """Whether the portal offers ``interface`` (reads its "version" property)."""
    try:
        conn = _connect()
    except PortalError:
        return False
    try:
        _call(conn, "org.freedesktop.DBus.Properties", "Get", "ss", (interface, "version"), timeout=3.0)
        return True
    except Exception as exc:  # noqa: BLE001 - no portal, or no such interface
        log.info("portal %s unavailable: %r", interface, exc)
        return False
    finally:
        conn.close()


def _request(conn, interface: str, method: str, signature: str, body, timeout: float) -> dict:  # noqa: ANN001
    """Call a portal method that answers through a Request object; the Response's results."""
    from jeepney import MatchRule, message_bus

    token = "lumen" + secrets.token_hex(6)
    sender = conn.unique_name.lstrip(":").replace(".", "_")
    rule = MatchRule(type="signal", interface="org.freedesktop.portal.Request", member="Response",
                     path=f"{PATH}/request/{sender}/{token}")
    conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=timeout)
    with conn.filter(rule) as queue:
        _call(conn, interface, method, signature, body(token), timeout)
        try:
            code, results = conn.recv_until_filtered(queue, timeout=timeout).body
        except TimeoutError as exc:
            raise PortalError(f"the desktop did not answer the {method} request") from exc
    if code == 1:
        raise PortalError("the request was cancelled")
    if code != 0:
        raise PortalError(f"the desktop refused the {method} request")
    return {key: value for key, (_sig, value) in results.items()}


def screenshot(timeout: float = 60.0) -> bytes:
    """The whole screen as image file bytes (PNG), through the Screenshot portal.

    The portal writes the picture to a file; it is read and deleted at once (nothing stays on disk)."""
    conn = _connect()
    try:
        results = _request(conn, SCREENSHOT, "Screenshot", "sa{sv}",
                           lambda token: ("", {"handle_token": ("s", token), "interactive": ("b", False)}), timeout)
    finally:
        conn.close()
    path = Path(unquote(urlparse(results.get("uri", "")).path))
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PortalError(f"the screenshot could not be read ({exc.strerror})") from exc
    finally:
        path.unlink(missing_ok=True)


_TRIGGER_MODIFIERS = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "meta": "LOGO"}
_TRIGGER_KEYS = {"escape": "Escape", "enter": "Return", "space": "space", "tab": "Tab", "backspace": "BackSpace",
                 "delete": "Delete", "insert": "Insert", "home": "Home", "end": "End", "page_up": "Page_Up",
                 "page_down": "Page_Down", "left": "Left", "right": "Right", "up": "Up", "down": "Down",
                 "pause": "Pause", "print": "Print", "menu": "Menu"}


def preferred_trigger(combo: Combo) -> str:
    """The XDG shortcuts notation: "CTRL+SHIFT+F5", modifiers then an XKB key name."""
    key = combo.key.upper() if combo.key[:1] == "f" and combo.key[1:].isdigit() else _TRIGGER_KEYS.get(combo.key, combo.key)
    return "+".join([_TRIGGER_MODIFIERS[m] for m in ("ctrl", "alt", "shift", "meta") if m in combo.modifiers] + [key])


class _Bridge(QObject):
    pressed = Signal(int)
    released = Signal(int)


class PortalShortcuts:
    """A hotkey backend (see desktop.native_hotkeys) on the GlobalShortcuts portal.

    The portal binds a session's shortcuts at once, so registrations are collected and bound on
    the next turn of the event loop, in a worker thread that then relays Activated/Deactivated
    (queued to the GUI thread). The desktop, not Lumen, decides the final keys (it may ask the
    user); the portal cannot take bare keys, so the command layer and the region grid are not
    available (``takes_bare_keys``), which the service reports."""

    takes_bare_keys = False
    takes_bare_keys_reason = "on Wayland the desktop's shortcuts portal cannot lend Lumen single letter keys"

    def __init__(self, on_press, on_release) -> None:  # noqa: ANN001

        if not has_interface(SHORTCUTS):
            raise Unavailable("this is a Wayland session and the desktop offers no global shortcuts portal")
        self._bridge = _Bridge()
        self._bridge.pressed.connect(on_press)
        self._bridge.released.connect(on_release)
        self._combos: dict[int, Combo] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bound: dict[str, str] = {}  # shortcut id -> the trigger the desktop reports

    def register(self, key_id: int, combo: Combo, any_modifiers: bool = False) -> bool:
        self._combos[key_id] = combo
        if self._thread is None:
            QTimer.singleShot(0, self._start)
        return True

    def unregister(self, key_id: int) -> None:
        self._combos.pop(key_id, None)  # a portal session cannot unbind one shortcut; it is ignored

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, args=(dict(self._combos),), daemon=True,
                                            name="lumen-shortcuts-portal")
            self._thread.start()

    def _run(self, combos: dict[int, Combo]) -> None:
        from jeepney import HeaderFields, MatchRule, message_bus

        try:
            conn = _connect()
        except PortalError as exc:
            log.warning("shortcuts portal: %s", exc)
            return
        session = ""
        try:
            results = _request(conn, SHORTCUTS, "CreateSession", "a{sv}", lambda token: ({
                "handle_token": ("s", token), "session_handle_token": ("s", "lumen" + secrets.token_hex(6))},), 10.0)
            session = str(results["session_handle"])
            shortcuts = [(f"lumen-{key_id}", {"description": ("s", combo.normal()),
                                              "preferred_trigger": ("s", preferred_trigger(combo))})
                         for key_id, combo in combos.items()]
            rule = MatchRule(type="signal", interface=SHORTCUTS, path=PATH)  # Activated and Deactivated
            conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=5.0)
            with conn.filter(rule, bufsize=64) as queue:
                bound = _request(conn, SHORTCUTS, "BindShortcuts", "oa(sa{sv})sa{sv}",
                                 lambda token: (session, shortcuts, "", {"handle_token": ("s", token)}), 120.0)
                self.bound = {sid: props.get("trigger_description", ("s", ""))[1]
                              for sid, props in bound.get("shortcuts", [])}
                log.info("shortcuts portal bound: %s", self.bound)
                while not self._stop.is_set():
                    try:
                        message = conn.recv_until_filtered(queue, timeout=0.2)
                    except TimeoutError:
                        continue
                    got_session, shortcut_id, *_ = message.body
                    if got_session != session or not shortcut_id.startswith("lumen-"):
                        continue
                    member = message.header.fields.get(HeaderFields.member)
                    signal = self._bridge.pressed if member == "Activated" else self._bridge.released
                    signal.emit(int(shortcut_id.removeprefix("lumen-")))
        except (PortalError, KeyError, TimeoutError, OSError) as exc:
            log.warning("shortcuts portal: %r", exc)
        finally:
            if session:
                try:
                    _call(conn, "org.freedesktop.portal.Session", "Close", "", (), path=session)
                except Exception as exc:  # noqa: BLE001 - the session may be gone already
                    log.debug("closing the portal session: %r", exc)
            conn.close()
