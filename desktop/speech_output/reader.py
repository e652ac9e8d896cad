"""What every screen-reader back-end is: the ``ScreenReader`` interface, what ``probe`` finds
(``Probe``) and the error that hands an utterance to the own voice (``ReaderError``). A leaf module,
so the back-ends (linux, windows, macos) and the router import it without going through the package
that picks among them."""

from __future__ import annotations

from dataclasses import dataclass


class ReaderError(Exception):
    """The screen reader could not be reached; the own voice takes over."""


class ScreenReader:
    name = "screen reader"
    supports_braille = False

    def speak(self, text: str, interrupt: bool = False) -> None:
        raise NotImplementedError

    def braille(self, text: str) -> None:  # noqa: B027 - readers without braille do nothing
        pass

    def cancel(self) -> None:
        raise NotImplementedError

    def output(self, text: str, interrupt: bool = False) -> None:
        """Speak, and show on the braille display where this reader can."""
        self.speak(text, interrupt)
        if self.supports_braille:
            self.braille(text)

    def close(self) -> None:  # noqa: B027
        pass


@dataclass(frozen=True)
class Probe:
    """What runs now: ``kind`` names a back-end (None: no reader), ``note`` says more in words."""

    kind: str | None
    label: str = ""  # the reader's name for people ("NVDA", "Orca (through Speech Dispatcher)")
    braille: bool = False
    note: str = ""
    braille_via: str = ""  # who shows the braille ("Orca", "BRLTTY"), when ``braille``

    def summary(self) -> str:
        """In words, for ``lumen --check`` and Settings (the same sentence in both)."""
        if self.kind is None:
            return "No screen reader is running; Lumen speaks with its own voice." + (f" {self.note}" if self.note else "")
        via = f" (through {self.braille_via})" if self.braille_via else ""
        braille = (f"Braille: messages and answers are also shown on the braille display{via}." if self.braille
                   else "Braille: none through this path.")
        return f"Lumen speaks through {self.label}. {braille}" + (f" {self.note}" if self.note else "")
