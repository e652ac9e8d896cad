"""Global hotkeys: parse and check bindings, and register them with the operating system.

Bindings are stored in Qt's portable text ("Ctrl+Shift+F5"). ``check_bindings`` refuses what
collides for our users: duplicates, Ctrl+Alt+letter (AltGr on many layouts), the screen readers'
modifiers (Insert, CapsLock), bare keys, and combinations the desktop or screen readers reserve.

``HotkeyService`` registers each binding through the OS's own hotkey registration
(``desktop.native_hotkeys``: XGrabKey on X11, RegisterHotKey on Windows, Carbon
RegisterEventHotKey on macOS; on Wayland the desktop's GlobalShortcuts portal, desktop.portal).
The OS then consumes the key, so the focused application never
receives it, and refuses a key another program holds: that is reported at once (``taken``). The
command layer and the region grid register their few keys (``MODAL_KEYS``) only while they are
open; no keyboard hook, so screen-reader keys and held modifiers are never swallowed.
"""

from __future__ import annotations

import logging
from PySide6.QtCore import QObject, Signal

from desktop.key_combos import MODIFIERS, Combo, Unavailable
from desktop.session import session_type

log = logging.getLogger(__name__)

NAMED_KEYS = {"space", "escape", "enter", "tab", "backspace", "delete", "insert", "home", "end", "page_up",
              "page_down", "left", "right", "up", "down", "pause", "print", "menu", "capslock", "numlock",
              "scrolllock"}
_ALIASES = {"esc": "escape", "return": "enter", "del": "delete", "ins": "insert", "pgup": "page_up",
            "pgdown": "page_down"}  # Qt's portable names -> ours
SCREEN_READER_KEYS = {"insert", "capslock", "numlock", "scrolllock"}  # NVDA/JAWS/Orca/Narrator modifiers
RESERVED = {  # desktop and screen-reader combinations we must never take
    "ctrl+alt+delete", "alt+tab", "alt+f4", "ctrl+escape", "alt+escape", "ctrl+shift+escape", "alt+space",
    "ctrl+c", "ctrl+v", "ctrl+x", "ctrl+z", "ctrl+y", "ctrl+a", "ctrl+s", "ctrl+f", "ctrl+w",
    "ctrl+alt+n", "ctrl+alt+z", "ctrl+alt+s",  # start NVDA / Narrator toggles / Orca
    "meta+ctrl+enter", "meta+enter", "alt+shift+s",
}
LAYER = {  # after the command key: one letter
    "s": "describe_screen", "w": "describe_window", "m": "describe_monitor", "r": "region",
    "q": "ask", "a": "recall", "t": "read_text", "x": "stop", "d": "status", "h": "layer_help",
    "f": "describe_focus", "e": "restart_engine",
    "f1": "layer_help",
}
# What the layer and the region grid (desktop.region) listen to: registered only while one is open.
# Keypad keys ("kp7") are reported as their digit, as the grid is laid out like a number pad.
MODAL_KEYS = sorted(set(LAYER) | set("0123456789") | {f"kp{d}" for d in range(10)}
                    | {"escape", "enter", "kp_enter", "space", "backspace"})
_KEYPAD_AS = {f"kp{d}": str(d) for d in range(10)} | {"kp_enter": "enter"}


def parse(text: str) -> Combo:
    """Qt portable text ("Ctrl+Shift+F5") -> Combo; ValueError if it is not one key plus modifiers."""
    parts = [p.strip().lower() for p in text.replace(" ", "").split("+")]
    if text.strip().endswith("++"):
        parts = parts[:-2] + ["+"]
    if not parts or any(not p for p in parts):
        raise ValueError(f"not a key combination: {text!r}")
    *mods, key = parts
    key = _ALIASES.get(key, key)
    mods = ["meta" if m in ("win", "cmd", "super") else m for m in mods]
    if any(m not in MODIFIERS for m in mods) or key in MODIFIERS:
        raise ValueError(f"not a key combination: {text!r}")
    if len(key) > 1 and key not in NAMED_KEYS and not _is_function_key(key):
        raise ValueError(f"unknown key {key!r} in {text!r}")
    return Combo(frozenset(mods), key)


def _is_function_key(key: str) -> bool:
    return key[:1] == "f" and key[1:].isdigit() and 1 <= int(key[1:]) <= 24


def check_bindings(bindings: dict[str, str]) -> list[str]:
    """Problems with a set of bindings, as sentences for the user; empty when all is well."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for action, text in bindings.items():
        if not text:
            continue
        try:
            combo = parse(text)
        except ValueError:
            problems.append(f"{text} for {action} is not a valid key combination.")
            continue
        mods, key = combo.modifiers, combo.key
        if combo.normal() in seen:
            problems.append(f"{text} is used for both {seen[combo.normal()]} and {action}.")
        seen[combo.normal()] = action
        if key in SCREEN_READER_KEYS or mods & SCREEN_READER_KEYS:
            problems.append(f"{text} uses a screen reader key.")
        elif {"ctrl", "alt"} <= mods and "shift" not in mods and len(key) == 1:
            problems.append(f"{text}: Ctrl+Alt with a letter is AltGr on many keyboards.")
        elif combo.normal() in RESERVED:
            problems.append(f"{text} is reserved by the system or a screen reader.")
        elif not (mods - {"shift"}) and not (_is_function_key(key) and int(key[1:]) >= 13):
            problems.append(f"{text} needs Ctrl, Alt or the Windows key.")
    return problems




def hotkeys_supported() -> str | None:
    """None when global hotkeys can work here, else the reason."""
    session = session_type()
    if session == "wayland":
        from desktop import portal

        if not portal.has_interface(portal.SHORTCUTS):
            return "this is a Wayland session and the desktop offers no global shortcuts portal"
    if session == "none":
        return "there is no graphical session (no X11 display and no Wayland)"
    return None


class HotkeyService(QObject):
    """Signals are emitted in the GUI thread (every backend delivers there)."""

    activated = Signal(str)  # an action name from settings.Hotkeys
    released = Signal(str)  # that action's key was released (push-to-talk)
    key = Signal(str)  # a MODAL_KEYS key pressed while modal (see begin_modal)
    unavailable = Signal(str)  # why global hotkeys cannot work
    taken = Signal(str, str)  # a binding another program holds: (Qt text, action)
    modal_refused = Signal(str)  # the layer's keys cannot be taken here (Wayland): why

    _MODAL_BASE = 1000  # ids of the modal keys; bindings use 1..

    def __init__(self, backend_factory=None) -> None:  # noqa: ANN001 - (on_press, on_release) -> Backend
        super().__init__()
        self._factory = backend_factory
        self._backend = None
        self._ids: dict[int, tuple[str, str]] = {}  # id -> ("action", name) or ("modal", key name)
        self._modal = False

    @property
    def running(self) -> bool:
        return self._backend is not None

    @property
    def modal(self) -> bool:
        return self._modal

    def start(self, bindings: dict[str, str]) -> bool:
        """(Re)register ``bindings`` (action -> Qt text). False if global hotkeys are unavailable."""
        from desktop import native_hotkeys

        self.stop()
        reason = hotkeys_supported() if self._factory is None else None
        backend = None
        if reason is None:
            try:
                backend = (self._factory or native_hotkeys.backend_for_platform())(self._pressed, self._released)
            except Unavailable as exc:
                reason = str(exc)
        if backend is None:
            log.warning("global hotkeys unavailable: %s", reason)
            self.unavailable.emit(reason)
            return False
        self._backend = backend
        for number, (action, text) in enumerate(bindings.items(), start=1):
            if not text:
                continue
            self._ids[number] = ("action", action)
            if not self._register(number, parse(text)):
                log.warning("hotkey %s is held by another program", text)
                self.taken.emit(text, action)
        log.info("global hotkeys active: %s", ", ".join(f"{a}={t}" for a, t in bindings.items() if t))
        return True

    def stop(self) -> None:
        self.end_modal()
        if self._backend is not None:
            backend, self._backend = self._backend, None
            backend.close()
        self._ids = {}

    def begin_modal(self) -> None:
        """Register MODAL_KEYS (any modifiers): they go to ``key``, not to the focused application."""
        if self._modal or self._backend is None:
            return
        if not getattr(self._backend, "takes_bare_keys", True):
            self.modal_refused.emit(self._backend.takes_bare_keys_reason)
            return
        self._modal = True
        for number, name in enumerate(MODAL_KEYS, start=self._MODAL_BASE):
            self._ids[number] = ("modal", name)
            if not self._register(number, Combo(frozenset(), name), any_modifiers=True):
                log.info("modal key %s is held by another program", name)

    def end_modal(self) -> None:
        if not self._modal:
            return
        self._modal = False
        for number in [n for n, (kind, _) in self._ids.items() if kind == "modal"]:
            del self._ids[number]
            if self._backend is not None:
                self._backend.unregister(number)

    def _register(self, number: int, combo: Combo, any_modifiers: bool = False) -> bool:
        """False only when another program holds the key; a key this keyboard lacks is logged."""
        try:
            return self._backend.register(number, combo, any_modifiers)
        except KeyError:
            log.warning("no key %s on this keyboard", combo.normal())
            return True

    def _pressed(self, number: int) -> None:
        kind, name = self._ids.get(number, ("", ""))
        if kind == "action":
            self.activated.emit(name)
        elif kind == "modal":
            self.key.emit(_KEYPAD_AS.get(name, name))

    def _released(self, number: int) -> None:
        kind, name = self._ids.get(number, ("", ""))
        if kind == "action":
            self.released.emit(name)
