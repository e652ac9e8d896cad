"""Qt accessibility announcements from Lumen's window (AT-SPI, UIA, NSAccessibility).

Readers read these only for the focused application (NVDA ignores UIA notifications from
background apps, JAWS and Orca < 49 none at all), so Lumen's speech goes to the reader through
``desktop.speech_output``; this is the path for a reader Lumen cannot address directly. Uses ``QAccessibleAnnouncementEvent`` (Qt >= 6.8): polite messages wait for the screen reader to
finish, assertive ones interrupt. On an older Qt the source object's accessible description is
changed instead, which screen readers report as a property change (a live-region substitute).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject
from PySide6.QtGui import QAccessible

log = logging.getLogger(__name__)

try:
    from PySide6.QtGui import QAccessibleAnnouncementEvent
except ImportError:  # pragma: no cover - Qt < 6.8
    QAccessibleAnnouncementEvent = None  # type: ignore[assignment,misc]


class Announcer:
    def __init__(self, source: QObject | None = None) -> None:
        self._source = source

    def set_source(self, source: QObject) -> None:
        """The widget the announcements come from (a visible one, e.g. the status line)."""
        self._source = source

    def announce(self, text: str, assertive: bool = False) -> None:
        if self._source is None or not text:
            return
        if QAccessibleAnnouncementEvent is not None:
            event = QAccessibleAnnouncementEvent(self._source, text)
            if assertive:
                event.setPoliteness(QAccessible.AnnouncementPoliteness.Assertive)
            QAccessible.updateAccessibility(event)
        else:  # pragma: no cover - Qt < 6.8
            self._source.setAccessibleDescription(text)  # type: ignore[attr-defined]
