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
