"""Where the focused control is, in screen pixels: what "describe the focused control" captures.

``focused_rect()`` asks the platform's accessibility API, the one screen readers use:
- Linux X11: AT-SPI over D-Bus (jeepney): the accessibility bus address from org.a11y.Bus, then the
  active window of each application is searched for the object whose state is FOCUSED, and its
  Component extents are read. Tested for real under Xvfb with at-spi2-core. Not on Wayland:
  there no application knows where its window is, so AT-SPI's screen coordinates are relative to
  the window (GTK 4, Qt) and would crop the wrong part of the screenshot; None, and the user
  hears that Wayland does not tell.
- Windows: UI Automation (IUIAutomation.GetFocusedElement, its CurrentBoundingRectangle, through
  comtypes), the element Narrator and NVDA read, inside browsers too; if UIA fails, the Win32 focus
  of the foreground thread (GetGUIThreadInfo, GetWindowRect). Both tested against recorded fakes.
- macOS: the Accessibility API (AXFocusedUIElement of the system-wide element, its AXPosition and
  AXSize; points, as desktop.capture_macos takes them). Needs the Accessibility permission: without
  it ``CaptureError("accessibility")``, so the user hears what to enable in System Settings.
  Tested against recorded fakes of ApplicationServices.
None means unknown; nothing else raises.
"""

from __future__ import annotations

import ctypes
import logging

from desktop import session
from desktop.capture import CaptureError, Rect

log = logging.getLogger(__name__)

MIN_SIDE = 64  # a check box is ~16 px: capture a little around it so there is something to see
_STATE_ACTIVE, _STATE_FOCUSED, _STATE_SHOWING = 1, 12, 25
_MAX_NODES = 4000  # a browser's tree can be huge: give up rather than freeze


def focused_rect() -> Rect | None:
    kind = session.session_type()
    if kind == "macos" and not session.accessibility_allowed(request=True):
        raise CaptureError("accessibility", "macOS Accessibility permission not granted")
    try:
        if kind == "windows":
            rect = _uia_focus() or _windows_focus()
        elif kind == "macos":
            rect = _mac_focus()
        elif kind == "x11":  # on Wayland, AT-SPI's "screen" extents are relative to the window
            rect = _atspi_focus()
        else:
            rect = None
    except Exception as exc:  # noqa: BLE001 - unknown focus: the caller says so
        log.info("focused control unavailable: %r", exc)
        return None
    return None if rect is None else _at_least(rect, MIN_SIDE)


def _at_least(rect: Rect, side: int) -> Rect:
    width, height = max(rect.width, side), max(rect.height, side)
    return Rect(rect.left - (width - rect.width) // 2, rect.top - (height - rect.height) // 2, width, height)


# ------------------------------------------------------------------------------------- AT-SPI
def _has(states: list[int], state: int) -> bool:
    word = state // 32
    return word < len(states) and bool(states[word] >> (state % 32) & 1)


def _atspi_focus() -> Rect | None:
    from jeepney import DBusAddress, MessageType, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    with open_dbus_connection(bus="SESSION") as session:
        bus = DBusAddress("/org/a11y/bus", bus_name="org.a11y.Bus", interface="org.a11y.Bus")
        reply = session.send_and_get_reply(new_method_call(bus, "GetAddress"), timeout=2)
    if reply.header.message_type is MessageType.error:
        return None
    with open_dbus_connection(bus=reply.body[0]) as a11y:
        def call(name: str, path: str, interface: str, method: str, signature: str | None = None, body=()):  # noqa: ANN001, ANN202
            address = DBusAddress(path, bus_name=name, interface=f"org.a11y.atspi.{interface}")
            answer = a11y.send_and_get_reply(new_method_call(address, method, signature, body), timeout=2)
            if answer.header.message_type is MessageType.error:
                raise LookupError(answer.body)
            return answer.body[0]

        visited = 0
        apps = call("org.a11y.atspi.Registry", "/org/a11y/atspi/accessible/root", "Accessible", "GetChildren")
        for app_name, app_path in apps:
            try:
                windows = call(app_name, app_path, "Accessible", "GetChildren")
            except LookupError:
                continue
            for name, path in windows:
                try:
                    if not _has(call(name, path, "Accessible", "GetState"), _STATE_ACTIVE):
                        continue
                except LookupError:
                    continue
                stack = [(name, path)]
                while stack and visited < _MAX_NODES:
                    node = stack.pop()
                    visited += 1
                    try:
                        states = call(*node, "Accessible", "GetState")
                        if _has(states, _STATE_FOCUSED):
                            x, y, w, h = call(*node, "Component", "GetExtents", "u", (0,))  # 0: screen
                            return Rect(x, y, w, h) if w > 0 and h > 0 else None
                        if node == (name, path) or _has(states, _STATE_SHOWING):
                            stack.extend(call(*node, "Accessible", "GetChildren"))
                    except LookupError:
                        continue
    return None


# ------------------------------------------------------------------------------------ Windows
def _uia_focus(automation=None) -> Rect | None:  # noqa: ANN001 - an IUIAutomation or a fake
    """The focused UI Automation element's bounds; None if UIA is unavailable or has no focus."""
    initialised = False
    try:
        if automation is None:
            import comtypes
            import comtypes.client

            comtypes.CoInitializeEx(comtypes.COINIT_MULTITHREADED)  # a worker thread: COM is per thread
            initialised = True
            comtypes.client.GetModule("UIAutomationCore.dll")
            from comtypes.gen.UIAutomationClient import CUIAutomation, IUIAutomation

            automation = comtypes.client.CreateObject(CUIAutomation, interface=IUIAutomation)
        bounds = automation.GetFocusedElement().CurrentBoundingRectangle
        width, height = bounds.right - bounds.left, bounds.bottom - bounds.top
        return Rect(bounds.left, bounds.top, width, height) if width > 0 and height > 0 else None
    except Exception as exc:  # noqa: BLE001 - COMError, no focus, comtypes missing
        log.info("UI Automation focus unavailable: %r", exc)
        return None
    finally:
        if initialised:
            import comtypes

            comtypes.CoUninitialize()


class _RECT(ctypes.Structure):
    _fields_ = [("left", ctypes.c_int32), ("top", ctypes.c_int32), ("right", ctypes.c_int32),
                ("bottom", ctypes.c_int32)]


class _GUITHREADINFO(ctypes.Structure):
    _fields_ = [("cbSize", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("hwndActive", ctypes.c_void_p),
                ("hwndFocus", ctypes.c_void_p), ("hwndCapture", ctypes.c_void_p),
                ("hwndMenuOwner", ctypes.c_void_p), ("hwndMoveSize", ctypes.c_void_p),
                ("hwndCaret", ctypes.c_void_p), ("rcCaret", _RECT)]


def _windows_focus(user32=None) -> Rect | None:  # noqa: ANN001 - ctypes.windll.user32 or a fake
    user32 = user32 or ctypes.windll.user32
    info = _GUITHREADINFO(cbSize=ctypes.sizeof(_GUITHREADINFO))
    if not user32.GetGUIThreadInfo(0, ctypes.byref(info)) or not info.hwndFocus:  # 0: the foreground thread
        return None
    rect = _RECT()
    if not user32.GetWindowRect(info.hwndFocus, ctypes.byref(rect)):
        return None
    width, height = rect.right - rect.left, rect.bottom - rect.top
    return Rect(rect.left, rect.top, width, height) if width > 0 and height > 0 else None


# -------------------------------------------------------------------------------------- macOS
class _CGPoint(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]


class _CGSize(ctypes.Structure):
    _fields_ = [("width", ctypes.c_double), ("height", ctypes.c_double)]


K_AX_VALUE_CGPOINT, K_AX_VALUE_CGSIZE = 1, 2
K_CF_STRING_ENCODING_UTF8 = 0x08000100


def _load_ax():  # noqa: ANN202 - ApplicationServices with CoreFoundation's few calls
    ax = ctypes.CDLL("/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices")
    cf = ctypes.CDLL("/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation")
    ax.AXIsProcessTrusted.restype = ctypes.c_bool
    ax.AXUIElementCreateSystemWide.restype = ctypes.c_void_p
    ax.AXUIElementCopyAttributeValue.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    ax.AXValueGetValue.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
    ax.AXValueGetValue.restype = ctypes.c_bool
    cf.CFStringCreateWithCString.restype = ctypes.c_void_p
    cf.CFStringCreateWithCString.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32]
    cf.CFRelease.argtypes = [ctypes.c_void_p]
    ax.CFStringCreateWithCString, ax.CFRelease = cf.CFStringCreateWithCString, cf.CFRelease
    return ax


def _mac_focus(ax=None) -> Rect | None:  # noqa: ANN001 - ApplicationServices or a fake
    ax = ax or _load_ax()
    if not ax.AXIsProcessTrusted():  # System Settings > Privacy & Security > Accessibility
        log.info("no Accessibility permission: the focused control cannot be read")
        return None
    owned: list[int] = []

    def attribute(element: int, name: bytes) -> int | None:
        key = ax.CFStringCreateWithCString(None, name, K_CF_STRING_ENCODING_UTF8)
        owned.append(key)
        value = ctypes.c_void_p()
        if ax.AXUIElementCopyAttributeValue(element, key, ctypes.byref(value)) != 0 or not value.value:
            return None
        owned.append(value.value)
        return value.value

    system = ax.AXUIElementCreateSystemWide()
    owned.append(system)
    try:
        element = attribute(system, b"AXFocusedUIElement")
        position = element and attribute(element, b"AXPosition")
        size = element and attribute(element, b"AXSize")
        point, extent = _CGPoint(), _CGSize()
        if not (position and size and ax.AXValueGetValue(position, K_AX_VALUE_CGPOINT, ctypes.byref(point))
                and ax.AXValueGetValue(size, K_AX_VALUE_CGSIZE, ctypes.byref(extent))):
            return None
        width, height = round(extent.width), round(extent.height)
        return Rect(round(point.x), round(point.y), width, height) if width > 0 and height > 0 else None
    finally:
        for ref in owned:
            ax.CFRelease(ref)
