"""Global hotkeys: parse and check bindings, and listen for them with pynput.

Bindings are stored in Qt's portable text ("Ctrl+Shift+F5"). ``check_bindings`` refuses what
collides for our users: duplicates, Ctrl+Alt+letter (AltGr on many layouts), the screen readers'
modifiers (Insert, CapsLock), bare keys, and combinations the desktop or screen readers reserve.

``HotkeyService`` observes the keyboard in pynput's thread and emits Qt signals (queued to the GUI
thread). The command key and the region grid need the next keys *not* to reach the focused
application, so ``begin_modal`` grabs the keyboard (pynput ``suppress=True``) until ``end_modal``.
pynput is imported lazily: on X11 it needs a display at import time. Wayland sessions do not allow
global hotkeys; ``unavailable`` says so.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

MODIFIERS = ("ctrl", "shift", "alt", "meta")
_QT_TO_PYNPUT = {
    "space": "space", "esc": "esc", "escape": "esc", "return": "enter", "enter": "enter", "tab": "tab",
    "backspace": "backspace", "del": "delete", "delete": "delete", "ins": "insert", "insert": "insert",
    "home": "home", "end": "end", "pgup": "page_up", "pgdown": "page_down", "left": "left",
    "right": "right", "up": "up", "down": "down", "pause": "pause", "print": "print_screen",
    "menu": "menu", "capslock": "caps_lock", "numlock": "num_lock", "scrolllock": "scroll_lock",
}
SCREEN_READER_KEYS = {"insert", "capslock", "numlock", "scrolllock"}  # NVDA/JAWS/Orca/Narrator modifiers
RESERVED = {  # desktop and screen-reader combinations we must never take
    "ctrl+alt+delete", "alt+tab", "alt+f4", "ctrl+esc", "alt+esc", "ctrl+shift+esc", "alt+space",
    "ctrl+c", "ctrl+v", "ctrl+x", "ctrl+z", "ctrl+y", "ctrl+a", "ctrl+s", "ctrl+f", "ctrl+w",
    "ctrl+alt+n", "ctrl+alt+z", "ctrl+alt+s",  # start NVDA / Narrator toggles / Orca
    "meta+ctrl+enter", "meta+enter", "alt+shift+s",
}
LAYER = {  # after the command key: one letter
    "s": "describe_screen", "w": "describe_window", "m": "describe_monitor", "r": "region",
    "q": "ask", "a": "recall", "t": "read_text", "x": "stop", "d": "status", "h": "layer_help",
    "f1": "layer_help",
}
_NUMPAD_NAV = {"home": "7", "up": "8", "page_up": "9", "left": "4", "begin": "5", "right": "6",
               "end": "1", "down": "2", "page_down": "3"}


@dataclass(frozen=True)
class Combo:
    modifiers: frozenset[str]
    key: str  # lower case: "f5", "l", "space"

    def normal(self) -> str:
        return "+".join([m for m in MODIFIERS if m in self.modifiers] + [self.key])

    def to_pynput(self) -> str:
        names = {"ctrl": "<ctrl>", "shift": "<shift>", "alt": "<alt>", "meta": "<cmd>"}
        parts = [names[m] for m in MODIFIERS if m in self.modifiers]
        key = self.key
        if len(key) == 1:
            parts.append(key)
        else:
            parts.append(f"<{_QT_TO_PYNPUT.get(key, key)}>")
        return "+".join(parts)


def parse(text: str) -> Combo:
    """Qt portable text ("Ctrl+Shift+F5") -> Combo; ValueError if it is not one key plus modifiers."""
    parts = [p.strip().lower() for p in text.replace(" ", "").split("+")]
    if text.strip().endswith("++"):
        parts = parts[:-2] + ["+"]
    if not parts or any(not p for p in parts):
        raise ValueError(f"not a key combination: {text!r}")
    *mods, key = parts
    mods = ["meta" if m in ("win", "cmd", "super") else m for m in mods]
    if any(m not in MODIFIERS for m in mods) or key in MODIFIERS:
        raise ValueError(f"not a key combination: {text!r}")
    if len(key) > 1 and key not in _QT_TO_PYNPUT and not _is_function_key(key):
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
    if sys.platform.startswith("linux"):
        if not os.environ.get("DISPLAY"):
            return "there is no X11 display (Wayland sessions do not allow global hotkeys)"
    return None


_X11_KEYSYMS = {"esc": "Escape", "enter": "Return", "return": "Return", "space": "space", "tab": "Tab",
                "backspace": "BackSpace", "del": "Delete", "delete": "Delete", "ins": "Insert",
                "insert": "Insert", "home": "Home", "end": "End", "pgup": "Prior", "pgdown": "Next",
                "left": "Left", "right": "Right", "up": "Up", "down": "Down", "pause": "Pause",
                "print": "Print", "menu": "Menu"}


def x11_taken(bindings: dict[str, str]) -> list[str]:
    """The bindings another X11 client has already grabbed (it would get them, not us).

    Probes with XGrabKey on a private connection and releases at once; BadAccess means taken.
    Returns [] where this cannot be checked (not X11, python-xlib missing).
    """
    if not (sys.platform.startswith("linux") and os.environ.get("DISPLAY")):
        return []
    try:
        from Xlib import XK, X, display, error
    except ImportError:
        return []
    masks = {"ctrl": X.ControlMask, "shift": X.ShiftMask, "alt": X.Mod1Mask, "meta": X.Mod4Mask}
    taken = []
    d = display.Display()
    try:
        root = d.screen().root
        for text in [t for t in bindings.values() if t]:
            combo = parse(text)
            name = combo.key.upper() if _is_function_key(combo.key) else _X11_KEYSYMS.get(combo.key, combo.key)
            keycode = d.keysym_to_keycode(XK.string_to_keysym(name))
            if not keycode:
                continue
            mods = 0
            for m in combo.modifiers:
                mods |= masks[m]
            catcher = error.CatchError(error.BadAccess)
            root.grab_key(keycode, mods, False, X.GrabModeAsync, X.GrabModeAsync, onerror=catcher)
            d.sync()
            if catcher.get_error():
                taken.append(text)
            else:
                root.ungrab_key(keycode, mods)
                d.sync()
    finally:
        d.close()
    return taken


def key_name(key: object) -> str:
    """A pynput key -> our name: "s", "7", "escape", "enter", "backspace", "f1", ..."""
    char = getattr(key, "char", None)
    if char:
        return char.lower()
    name = getattr(key, "name", None)
    if name:
        name = {"esc": "escape"}.get(name, name)
        return _NUMPAD_NAV.get(name, name)
    vk = getattr(key, "vk", None)
    if vk is not None and 0xFFB0 <= vk <= 0xFFB9:  # X11 keypad digits without a char
        return str(vk - 0xFFB0)
    return ""


class HotkeyService(QObject):
    activated = Signal(str)  # an action name from settings.Hotkeys
    released = Signal(str)  # a key of that action's combination was released (push-to-talk)
    key = Signal(str)  # a key pressed while modal (see begin_modal)
    unavailable = Signal(str)  # why global hotkeys cannot work
    taken = Signal(str)  # a binding another program has grabbed (Qt text)

    def __init__(self) -> None:
        super().__init__()
        self._listener = None
        self._modal = None
        self._hotkeys: list = []
        self._combos: dict[str, set] = {}  # action -> its keys (canonical), for ``released``
        self._held: set[str] = set()  # actions activated whose keys are still down

    @property
    def running(self) -> bool:
        return self._listener is not None

    @property
    def modal(self) -> bool:
        return self._modal is not None

    def start(self, bindings: dict[str, str]) -> bool:
        """(Re)start listening for ``bindings`` (action -> Qt text). False if unavailable."""
        self.stop()
        reason = hotkeys_supported()
        if reason is None:
            try:
                from pynput import keyboard
            except Exception as exc:  # noqa: BLE001 - pynput raises ImportError subclasses and more
                reason = str(exc).splitlines()[0]
        if reason is not None:
            log.warning("global hotkeys unavailable: %s", reason)
            self.unavailable.emit(reason)
            return False
        self._hotkeys, self._combos, self._held = [], {}, set()
        for action, text in bindings.items():
            if not text:
                continue
            combo = keyboard.HotKey.parse(parse(text).to_pynput())
            self._combos[action] = set(combo)
            self._hotkeys.append(keyboard.HotKey(combo, lambda a=action: self._activate(a)))
        listener = keyboard.Listener(on_press=self._on_press, on_release=self._on_release)
        listener.daemon = True
        listener.start()
        listener.wait()
        self._listener = listener
        try:
            for text in x11_taken(bindings):
                log.warning("hotkey %s is grabbed by another program", text)
                self.taken.emit(text)
        except Exception as exc:  # noqa: BLE001 - the probe is advisory; hotkeys still run
            log.info("could not probe hotkey conflicts: %r", exc)
        log.info("global hotkeys active: %s", ", ".join(f"{a}={t}" for a, t in bindings.items() if t))
        return True

    def stop(self) -> None:
        self.end_modal()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            _stop_listener(listener)

    def begin_modal(self) -> None:
        """Grab the keyboard: keys go to ``key`` and not to the focused application."""
        if self._modal is not None or self._listener is None:
            return
        from pynput import keyboard

        def on_press(k: object) -> None:
            name = key_name(k)
            if name and name not in ("shift", "shift_r", "ctrl", "ctrl_l", "ctrl_r", "alt", "alt_l", "alt_r"):
                self.key.emit(name)

        modal = keyboard.Listener(on_press=on_press, suppress=True)
        modal.daemon = True
        modal.start()
        modal.wait()
        self._modal = modal

    def end_modal(self) -> None:
        if self._modal is not None:
            modal, self._modal = self._modal, None
            _stop_listener(modal)  # releases the keyboard grab

    # pynput thread -------------------------------------------------
    def _activate(self, action: str) -> None:
        self._held.add(action)
        self.activated.emit(action)

    def _on_press(self, key: object) -> None:
        if self._listener is None:
            return
        canonical = self._listener.canonical(key)
        for hotkey in self._hotkeys:
            hotkey.press(canonical)

    def _on_release(self, key: object) -> None:
        if self._listener is None:
            return
        canonical = self._listener.canonical(key)
        for hotkey in self._hotkeys:
            hotkey.release(canonical)
        for action in [a for a in self._held if canonical in self._combos.get(a, ())]:
            self._held.discard(action)
            self.released.emit(action)


def _stop_listener(listener) -> None:  # noqa: ANN001 - a pynput keyboard.Listener
    """Stop a pynput listener and wait for its thread. On X11, pynput 1.8 sends its "disable
    record context" on the connection its thread is blocked reading, unflushed, so the thread ran
    on until the next key event: stop() blocked the GUI for the 1 s join timeout, and a modal
    listener kept the keyboard grabbed. Sending the disable on the listener's other connection, as
    its own clean-up does, ends it at once. Other platforms stop promptly without this."""
    listener.stop()
    display, context = getattr(listener, "_display_stop", None), getattr(listener, "_context", None)
    if display is not None and context is not None:
        try:
            display.record_disable_context(context)
            display.flush()
        except Exception as exc:  # noqa: BLE001 - already closed: the thread is ending anyway
            log.debug("record context already gone: %r", exc)
    listener.join(1.0)
