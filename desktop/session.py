"""Which kind of desktop session this is: one place, used by hotkeys, capture and ``lumen --check``."""

from __future__ import annotations

import os
import sys


def session_type() -> str:
    """ "x11", "wayland", "windows", "macos" or "none" (Linux without any display).

    XWayland sets DISPLAY in Wayland sessions, so DISPLAY alone does not mean X11: X11 clients
    there see neither other programs' keys nor their windows' contents."""
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    if os.environ.get("XDG_SESSION_TYPE", "").lower() == "wayland" or os.environ.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "x11" if os.environ.get("DISPLAY") else "none"


# How each session does hotkeys and capture, and how this was verified (for ``lumen --check``, README).
HOTKEYS_VIA = {
    "x11": "XGrabKey on the X server (exercised for real under Xvfb)",
    "wayland": "the desktop's GlobalShortcuts portal (tested against a fake portal only)",
    "windows": "RegisterHotKey in a thread of its own, so that menus and message boxes do not swallow them "
               "(tested against recorded fakes of user32 only)",
    "macos": "Carbon RegisterEventHotKey, which needs no permission (tested against recorded fakes only)",
}
CAPTURE_VIA = {
    "x11": "mss over X11 (exercised for real under Xvfb)",
    "wayland": "the desktop's Screenshot portal (tested against a fake portal only)",
    "windows": "mss with GDI (not exercised here)",
    "macos": "ScreenCaptureKit at the Retina pixel resolution (CoreGraphics before macOS 14), after the "
             "Screen Recording permission (tested against recorded fakes of pyobjc only)",
}

FOCUS_VIA = {
    "x11": "AT-SPI, the interface Orca reads (exercised for real under Xvfb)",
    "wayland": "not available: Wayland gives applications no screen positions, so AT-SPI's are window-relative",
    "windows": "UI Automation, else the Win32 focus (tested against recorded fakes only)",
    "macos": "the Accessibility API, after the Accessibility permission (tested against recorded fakes only)",
}


def _core_graphics():  # noqa: ANN202
    import ctypes

    cg = ctypes.CDLL("/System/Library/Frameworks/CoreGraphics.framework/CoreGraphics")
    cg.CGPreflightScreenCaptureAccess.restype = ctypes.c_bool
    cg.CGRequestScreenCaptureAccess.restype = ctypes.c_bool
    return cg


def screen_recording_allowed(request: bool = False, cg=None) -> bool:  # noqa: ANN001
    """macOS: whether Lumen may record the screen (without it a grab holds only the wallpaper).
    ``request`` asks macOS to show its prompt (once; later it only lists Lumen in System Settings).
    True on other systems, and on macOS versions without the call (before 10.15: no permission)."""
    if sys.platform != "darwin" and cg is None:
        return True
    try:
        cg = cg or _core_graphics()
        if cg.CGPreflightScreenCaptureAccess():
            return True
        return bool(cg.CGRequestScreenCaptureAccess()) if request else False
    except (OSError, AttributeError):
        return True


def _hi_services():  # noqa: ANN202 - pyobjc's ApplicationServices (HIServices' AX calls)
    import ApplicationServices

    return ApplicationServices


def accessibility_allowed(request: bool = False, hi=None) -> bool:  # noqa: ANN001
    """macOS: whether Lumen may read other applications' controls (describe the focused control).
    ``request`` asks macOS to show its prompt, which opens System Settings > Privacy & Security >
    Accessibility. True on other systems, and where the call cannot be made (the AX calls in
    desktop.focus then find nothing, and the user hears that the control was not found)."""
    if sys.platform != "darwin" and hi is None:
        return True
    try:
        hi = hi or _hi_services()
        return bool(hi.AXIsProcessTrustedWithOptions({hi.kAXTrustedCheckOptionPrompt: bool(request)}))
    except (ImportError, AttributeError):
        return True
