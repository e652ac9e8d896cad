"""macOS: VoiceOver, through an NSAccessibility announcement (pyobjc's AppKit).

``NSAccessibilityPostNotificationWithUserInfo(NSApp, NSAccessibilityAnnouncementRequestedNotification,
{NSAccessibilityAnnouncementKey: text, NSAccessibilityPriorityKey: high or medium})``, posted on
the main thread (the GUI thread, where the router runs). High priority interrupts what VoiceOver
says, medium waits. VoiceOver offers other programs no call to stop its speech nor to write to the
braille display, so ``cancel`` does nothing and braille is whatever VoiceOver shows for an
announcement. Detection: ``NSWorkspace.isVoiceOverEnabled`` (or, without pyobjc,
``defaults read com.apple.universalaccess voiceOverOnOffKey``).
"""

from __future__ import annotations

import logging
import subprocess

from desktop.speech_output import Probe, ReaderError, ScreenReader

log = logging.getLogger(__name__)


def _appkit():  # noqa: ANN202
    try:
        import AppKit
    except ImportError:
        return None
    return AppKit


def probe(appkit=None, run=subprocess.run) -> Probe:  # noqa: ANN001
    appkit = appkit or _appkit()
    if appkit is not None:
        on = bool(appkit.NSWorkspace.sharedWorkspace().isVoiceOverEnabled())
    else:
        try:
            out = run(["defaults", "read", "com.apple.universalaccess", "voiceOverOnOffKey"],
                      capture_output=True, text=True, timeout=2).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        on = out == "1"
    if not on:
        return Probe(None)
    note = "" if appkit is not None else "pyobjc is missing: Lumen cannot send VoiceOver announcements."
    return Probe("voiceover", "VoiceOver", braille=False, note=note)


class VoiceOver(ScreenReader):
    name = "VoiceOver"

    def __init__(self, appkit=None) -> None:  # noqa: ANN001
        self._appkit = appkit or _appkit()
        if self._appkit is None:
            raise ReaderError("pyobjc (AppKit) is not installed")

    def speak(self, text: str, interrupt: bool = False) -> None:
        ak = self._appkit
        priority = ak.NSAccessibilityPriorityHigh if interrupt else ak.NSAccessibilityPriorityMedium
        app = ak.NSApplication.sharedApplication()
        try:
            ak.NSAccessibilityPostNotificationWithUserInfo(
                app, ak.NSAccessibilityAnnouncementRequestedNotification,
                {ak.NSAccessibilityAnnouncementKey: text, ak.NSAccessibilityPriorityKey: priority})
        except Exception as exc:  # noqa: BLE001 - an Objective-C exception through pyobjc
            raise ReaderError(f"VoiceOver announcement: {exc!r}") from exc

    def cancel(self) -> None:
        pass  # VoiceOver has no call for this (see the module docstring)
