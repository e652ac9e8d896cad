"""Speech output through the user's own screen reader, with Lumen's own voice as the safety net.

One small interface, ``ScreenReader`` (``speak(text, interrupt)``, ``braille(text)``, ``cancel()``,
``name``, ``supports_braille``), with a back-end per reader and OS:

- Linux: Orca >= 49 through its D-Bus service (``linux.OrcaService``: speech and braille through
  Orca); older Orca through Speech Dispatcher, the server, voice and settings Orca itself speaks
  with (``linux.SpeechDispatcher``, SSIP over its socket), with braille flashed on BRLTTY's display
  through BrlAPI where BRLTTY runs (``braille.BrailleFlash``).
- Windows: NVDA's controller client (speech, braille, cancel) and JAWS' FSAPI COM object
  (``windows``).
- macOS: VoiceOver announcements (``macos``).

``probe()`` answers "which reader runs *now*?" cheaply (no connection to the reader);
``ReaderWatch`` re-asks it at most every ``ttl`` seconds and keeps one open back-end per reader.
``SpeechRouter`` sends each utterance to the reader and/or the own voice as the setting says, and
falls back to the own voice whenever no reader runs or the reader path fails: never silent. Qt's
announcement event (AT-SPI / UIA / NSAccessibility, ``desktop.announcements``) is kept for what it
is good at: a reader Lumen cannot address directly hears it while Lumen's window has focus.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from desktop.speech_output.reader import Probe, ReaderError, ScreenReader
from desktop.speech_output.router import SpeechRouter

__all__ = ["Probe", "ReaderError", "ReaderWatch", "ScreenReader", "SpeechRouter", "open_reader", "probe"]

log = logging.getLogger(__name__)


def probe() -> Probe:
    """Which screen reader runs now, on this OS (never raises; unknown is "none")."""
    try:
        if sys.platform.startswith("linux"):
            from desktop.speech_output import linux

            return linux.probe()
        if sys.platform == "win32":
            from desktop.speech_output import windows

            return windows.probe()
        if sys.platform == "darwin":
            from desktop.speech_output import macos

            return macos.probe()
    except Exception as exc:  # noqa: BLE001 - a broken probe means "no reader": the own voice speaks
        log.warning("screen reader detection failed: %r", exc)
        return Probe(None, note=f"Screen reader detection failed ({type(exc).__name__}).")
    return Probe(None)


def open_reader(kind: str) -> ScreenReader:
    """The back-end for a probed ``kind``."""
    if kind in ("orca-service", "orca-speechd"):
        from desktop.speech_output import linux

        return linux.OrcaService() if kind == "orca-service" else linux.SpeechDispatcher(braille=linux.brltty())
    if kind in ("nvda", "jaws"):
        from desktop.speech_output import windows

        return windows.open_reader(kind)
    if kind == "voiceover":
        from desktop.speech_output import macos

        return macos.VoiceOver()
    raise ReaderError(f"no back-end for {kind!r}")


class ReaderWatch:
    """The reader running now, re-detected at most every ``ttl`` seconds (a reader can start or quit
    at any time); one open back-end per reader, reused while it keeps running. A back-end that
    failed is not tried again for ``cooldown`` seconds (a hung server would cost every utterance
    its timeout): the own voice speaks meanwhile."""

    def __init__(self, probe_fn: Callable[[], Probe] = probe, opener: Callable[[str], ScreenReader] = open_reader,
                 ttl: float = 2.0, clock: Callable[[], float] = time.monotonic, announcer=None,  # noqa: ANN001
                 cooldown: float = 5.0) -> None:
        self._probe_fn, self._opener, self._ttl, self._clock = probe_fn, opener, ttl, clock
        self._cooldown = cooldown
        self._failed: tuple[str | None, float] = (None, 0.0)  # the kind that failed last, and when
        self.announcer = announcer  # desktop.announcements.Announcer, or None
        self.last: Probe = Probe(None)
        self._checked: float | None = None
        self._reader: ScreenReader | None = None
        self._kind: str | None = None

    def current(self) -> ScreenReader | None:
        now = self._clock()
        if self._checked is None or now - self._checked >= self._ttl:
            self._checked = now
            self.last = self._probe_fn()
            if self.last.kind != self._kind:
                self._drop()
                failed, at = self._failed
                if self.last.kind is not None and not (self.last.kind == failed and now - at < self._cooldown):
                    try:
                        self._reader, self._kind = self._opener(self.last.kind), self.last.kind
                    except Exception as exc:  # noqa: BLE001 - no back-end: the own voice speaks
                        log.warning("cannot open %s: %r", self.last.kind, exc)
        return self._reader

    def announce(self, text: str, interrupt: bool) -> None:
        """Qt's announcement, for a reader Lumen cannot address directly (it reads the focused window's)."""
        if self.announcer is not None:
            self.announcer.announce(text, assertive=interrupt)

    def forget(self) -> None:
        """The reader failed: close it; detect again next time, and reopen it after the cooldown."""
        self._failed = (self._kind, self._clock())
        self._drop()
        self._checked = None

    def _drop(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception:  # noqa: BLE001
                log.debug("closing the reader failed", exc_info=True)
        self._reader, self._kind = None, None
