"""macOS: VoiceOver, through an NSAccessibility announcement (pyobjc's AppKit).

``NSAccessibilityPostNotificationWithUserInfo(NSApp, NSAccessibilityAnnouncementRequestedNotification,
{NSAccessibilityAnnouncementKey: text, NSAccessibilityPriorityKey: high or medium})``, posted on
the main thread (the GUI thread, where the router runs). Priorities, as Apple documents them for
announcements (AppKit's NSAccessibilityPriorityKey says only that VoiceOver uses it to decide
whether to speak at once or after its current speech; the levels' meaning is documented for
announcement priorities in Foundation/UIKit): high interrupts other speech and cannot be
interrupted once started; default/medium interrupts existing speech and is cut by the next
utterance (so streamed answer sentences would cut each other off); low is queued until other speech
has finished. So Lumen posts high only when interrupting (the acknowledgement, "Stopped") and low
otherwise. VoiceOver offers other programs no call to stop its speech, nor to clear what is queued,
nor to write to the braille display: ``cancel`` does nothing (Stop's high-priority "Stopped" cuts
what VoiceOver is saying; announcements already queued may still be read), and braille is whatever
VoiceOver shows for an announcement. Apple does not say whether VoiceOver speaks announcements of
an application that is not in front. Detection: ``NSWorkspace.isVoiceOverEnabled`` (or, without pyobjc,
``defaults read com.apple.universalaccess voiceOverOnOffKey``).
"""

from __future__ import annotations

import logging
import subprocess

from desktop.speech_output.reader import Probe, ReaderError, ScreenReader

log = logging.getLogger(__name__)


VOICEOVER_LIMITS = ("VoiceOver has no call to stop its speech: Stop interrupts what it is saying, but announcements "
                    "it has already queued may still be read. Whether it reads (or brailles) Lumen's announcements "
                    "while another app is in front is unproven.")


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
    if appkit is None:
        return Probe("voiceover", "VoiceOver", note="pyobjc is missing: Lumen cannot send VoiceOver announcements.")
    return Probe("voiceover", "VoiceOver", note=VOICEOVER_LIMITS)


class VoiceOver(ScreenReader):
    name = "VoiceOver"

    def __init__(self, appkit=None) -> None:  # noqa: ANN001
        self._appkit = appkit or _appkit()
        if self._appkit is None:
            raise ReaderError("pyobjc (AppKit) is not installed")

    def speak(self, text: str, interrupt: bool = False) -> None:
        ak = self._appkit
        priority = ak.NSAccessibilityPriorityHigh if interrupt else ak.NSAccessibilityPriorityLow
        app = ak.NSApplication.sharedApplication()
        try:
            ak.NSAccessibilityPostNotificationWithUserInfo(
                app, ak.NSAccessibilityAnnouncementRequestedNotification,
                {ak.NSAccessibilityAnnouncementKey: text, ak.NSAccessibilityPriorityKey: priority})
        except Exception as exc:  # noqa: BLE001 - an Objective-C exception through pyobjc
            raise ReaderError(f"VoiceOver announcement: {exc!r}") from exc

    def cancel(self) -> None:
        pass  # VoiceOver has no call for this: the "Stopped" that follows, at high priority, cuts its speech
