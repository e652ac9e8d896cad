"""What a hotkey is, shared by the service that picks a backend (``desktop.hotkeys``) and the backends
(``desktop.native_hotkeys``, ``desktop.portal``): a key with its modifiers, and the error a backend
raises when it cannot register keys here. A leaf module, so the backends never import the service."""

from __future__ import annotations

from dataclasses import dataclass

MODIFIERS = ("ctrl", "shift", "alt", "meta")  # in the order a combination is written


@dataclass(frozen=True)
class Combo:
    modifiers: frozenset[str]
    key: str  # lower case: "f5", "l", "space"

    def normal(self) -> str:
        return "+".join([m for m in MODIFIERS if m in self.modifiers] + [self.key])


class Unavailable(Exception):
    """Hotkeys cannot be registered here; the message says why, for the user."""
