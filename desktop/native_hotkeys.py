"""The operating systems' own hotkey registration, behind one small interface.

A backend is built with two callbacks, ``on_press(id)`` and ``on_release(id)``, which it calls in
the GUI thread, and offers:

- ``register(id, combo, any_modifiers) -> bool``: False when another program holds the key (the
  OS refused it); KeyError when this keyboard has no such key;
- ``unregister(id)`` and ``close()`` (unregisters everything).

Registered keys are consumed by the OS: the focused application does not receive them.

- X11: ``XGrabKey`` on the root window (python-xlib), events read through a QSocketNotifier;
  BadAccess = taken. Tested for real under Xvfb.
- Windows: ``RegisterHotKey`` (thread hotkeys of a thread of their own, whose GetMessageW loop
  hands WM_HOTKEY to Qt, so they work while the GUI thread is in a menu's or a message box's modal
  loop); ERROR_HOTKEY_ALREADY_REGISTERED = taken. Windows sends no key-up for hotkeys, so the release
  (push-to-talk) is polled with ``GetAsyncKeyState``. Tested against recorded fakes of user32.
- macOS: Carbon ``RegisterEventHotKey`` with an event handler on the application target (needs no
  Input Monitoring permission, runs on the main thread; pynput's listener crashed PySide6 apps
  there); eventHotKeyExistsErr = taken. Tested against recorded fakes of Carbon.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import sys
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QSocketNotifier, Qt, QTimer, Signal, Slot

from desktop.key_combos import Combo, Unavailable
from desktop.session import session_type

log = logging.getLogger(__name__)

Callback = Callable[[int], None]


def backend_for_platform():  # noqa: ANN201 - a backend class
    if sys.platform == "win32":
        return WindowsBackend
    if sys.platform == "darwin":
        return MacBackend
    if session_type() == "wayland":
        from desktop.portal import PortalShortcuts

        return PortalShortcuts
    return X11Backend


# ------------------------------------------------------------------------------------------ X11
_X11_KEYSYMS = {"escape": "Escape", "enter": "Return", "space": "space", "tab": "Tab",
                "backspace": "BackSpace", "delete": "Delete", "insert": "Insert", "home": "Home",
                "end": "End", "page_up": "Prior", "page_down": "Next", "left": "Left", "right": "Right",
                "up": "Up", "down": "Down", "pause": "Pause", "print": "Print", "menu": "Menu",
                "capslock": "Caps_Lock", "numlock": "Num_Lock", "scrolllock": "Scroll_Lock",
                "kp_enter": "KP_Enter", **{f"kp{d}": f"KP_{d}" for d in range(10)}}


class X11Backend:
    def __init__(self, on_press: Callback, on_release: Callback) -> None:
        try:
            from Xlib import X, XK, display, error
        except ImportError as exc:
            raise Unavailable("the python-xlib package is missing") from exc
        try:
            self._d = display.Display()
        except Exception as exc:  # noqa: BLE001 - Xlib raises DisplayError and others
            raise Unavailable(f"the X11 display cannot be opened ({exc})") from exc
        self._X, self._XK, self._error = X, XK, error
        self._root = self._d.screen().root
        self._on_press, self._on_release = on_press, on_release
        numlock = self._modifier_mask("Num_Lock") or X.Mod2Mask
        scroll = self._modifier_mask("Scroll_Lock")
        # A passive grab matches the exact modifier state: grab again with each lock key on.
        locks = {X.LockMask, numlock} | ({scroll} if scroll else set())
        self._lock_variants = sorted({a | b | c for a in (0, X.LockMask) for b in (0, numlock)
                                      for c in ((0, scroll) if scroll else (0,))})
        self._ignored = sum(locks)
        self._grabs: dict[int, list[tuple[int, int]]] = {}  # id -> (keycode, modifiers) grabbed
        self._by_key: dict[tuple[int, int], int] = {}  # (keycode, modifiers or AnyModifier) -> id
        self._down: dict[int, int] = {}  # keycode -> id whose press we reported
        self._notifier = QSocketNotifier(self._d.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)

    def _modifier_mask(self, keysym: str) -> int:
        keycode = self._d.keysym_to_keycode(self._XK.string_to_keysym(keysym))
        for index, codes in enumerate(self._d.get_modifier_mapping()):
            if keycode and keycode in codes:
                return 1 << index
        return 0

    def _keycode(self, key: str) -> int:
        name = key.upper() if key[:1] == "f" and key[1:].isdigit() else _X11_KEYSYMS.get(key, key)
        keycode = self._d.keysym_to_keycode(self._XK.string_to_keysym(name))
        if not keycode:
            raise KeyError(key)
        return keycode

    def register(self, key_id: int, combo: Combo, any_modifiers: bool = False) -> bool:
        X = self._X
        keycode = self._keycode(combo.key)
        if any_modifiers:
            variants = [X.AnyModifier]
        else:
            masks = {"ctrl": X.ControlMask, "shift": X.ShiftMask, "alt": X.Mod1Mask, "meta": X.Mod4Mask}
            mods = sum(masks[m] for m in combo.modifiers)
            variants = [mods | lock for lock in self._lock_variants]
        catchers = []
        for mods in variants:
            catcher = self._error.CatchError(self._error.BadAccess)
            self._root.grab_key(keycode, mods, False, X.GrabModeAsync, X.GrabModeAsync, onerror=catcher)
            catchers.append(catcher)
        self._d.sync()
        taken = any(c.get_error() for c in catchers)
        for mods, catcher in zip(variants, catchers):
            if taken and not catcher.get_error():
                self._root.ungrab_key(keycode, mods)
        if taken:
            self._d.sync()
            self._drain()
            return False
        self._grabs[key_id] = [(keycode, m) for m in variants]
        key = (keycode, X.AnyModifier if any_modifiers else variants[0])
        self._by_key[key] = key_id
        self._drain()
        return True

    def unregister(self, key_id: int) -> None:
        grabs = self._grabs.pop(key_id, [])
        for keycode, mods in grabs:
            self._root.ungrab_key(keycode, mods)
        for keycode, _ in grabs:  # ungrabbing AnyModifier also dropped our other grabs of that key
            for other in self._grabs.values():
                for code, mods in other:
                    if code == keycode:
                        self._root.grab_key(code, mods, False, self._X.GrabModeAsync, self._X.GrabModeAsync)
        self._by_key = {k: v for k, v in self._by_key.items() if v != key_id}
        self._down = {k: v for k, v in self._down.items() if v != key_id}
        if grabs:
            self._d.sync()
            self._drain()

    def close(self) -> None:
        self._notifier.setEnabled(False)
        for key_id in list(self._grabs):
            self.unregister(key_id)
        self._d.close()

    def _drain(self) -> None:
        """Handle the queued key events. An auto-repeat arrives as a release and a press with the
        same time stamp: neither is reported, so a held push-to-talk key stays held."""
        X = self._X
        events = []
        while self._d.pending_events():
            event = self._d.next_event()
            if event.type in (X.KeyPress, X.KeyRelease):
                events.append(event)
        skip = False
        for i, event in enumerate(events):
            if skip:
                skip = False
                continue
            if event.type == X.KeyRelease:
                following = events[i + 1] if i + 1 < len(events) else None
                if (following is not None and following.type == X.KeyPress
                        and following.detail == event.detail and following.time == event.time):
                    skip = True  # auto-repeat
                    continue
                key_id = self._down.pop(event.detail, None)
                if key_id is not None:
                    self._on_release(key_id)
            elif event.detail not in self._down:
                mods = (event.state & 0xFF) & ~self._ignored
                key_id = self._by_key.get((event.detail, mods), self._by_key.get((event.detail, X.AnyModifier)))
                if key_id is not None:
                    self._down[event.detail] = key_id
                    self._on_press(key_id)


# -------------------------------------------------------------------------------------- Windows
WM_HOTKEY = 0x0312
MOD_ALT, MOD_CONTROL, MOD_SHIFT, MOD_WIN, MOD_NOREPEAT = 0x1, 0x2, 0x4, 0x8, 0x4000
ERROR_HOTKEY_ALREADY_REGISTERED = 1409
_WIN_VK = {"escape": 0x1B, "enter": 0x0D, "space": 0x20, "tab": 0x09, "backspace": 0x08, "delete": 0x2E,
           "insert": 0x2D, "home": 0x24, "end": 0x23, "page_up": 0x21, "page_down": 0x22, "left": 0x25,
           "up": 0x26, "right": 0x27, "down": 0x28, "pause": 0x13, "print": 0x2C, "menu": 0x5D,
           "capslock": 0x14, "numlock": 0x90, "scrolllock": 0x91,
           **{f"kp{d}": 0x60 + d for d in range(10)}, **{f"f{n}": 0x6F + n for n in range(1, 25)}}
# kp_enter has no virtual key of its own on Windows (it is VK_RETURN, extended): "enter" covers it.


def windows_vk(key: str) -> int:
    if key in _WIN_VK:
        return _WIN_VK[key]
    if len(key) == 1 and key.isalnum() and key.isascii():
        return ord(key.upper())
    raise KeyError(key)


class _Msg(ctypes.Structure):  # MSG, with fixed-size fields so it is laid out the same everywhere
    _fields_ = [("hwnd", ctypes.c_void_p), ("message", ctypes.c_uint32), ("wParam", ctypes.c_size_t),
                ("lParam", ctypes.c_ssize_t), ("time", ctypes.c_uint32), ("x", ctypes.c_int32),
                ("y", ctypes.c_int32)]


WM_QUIT, WM_APP, PM_NOREMOVE = 0x0012, 0x8000, 0


class _Relay(QObject):
    """Carries a WM_HOTKEY's id from the hotkey thread to the GUI thread (a queued signal)."""

    hotkey = Signal(int)

    def __init__(self, deliver: Callback) -> None:
        super().__init__()
        self._deliver = deliver
        self.hotkey.connect(self._on_hotkey, Qt.ConnectionType.QueuedConnection)

    @Slot(int)
    def _on_hotkey(self, key_id: int) -> None:
        self._deliver(key_id)


class WindowsBackend:
    """Thread hotkeys (``RegisterHotKey(NULL, ...)``) owned by a thread of their own, whose
    ``GetMessageW`` loop receives WM_HOTKEY and posts it to Qt. Registered from the GUI thread, the
    message went to the GUI thread's queue, where a modal loop (an open menu, a message box, a
    window being moved or resized) takes it without Qt's native event filter ever seeing it: the
    hotkeys were dead exactly when a user was stuck. This thread never enters a modal loop.
    ``register``/``unregister`` run there (a hotkey belongs to the thread that registered it),
    woken by a posted WM_APP; Qt's queued signals and timers keep working in native modal loops."""

    RELEASE_POLL_MS = 30
    START_TIMEOUT_S = 5.0

    def __init__(self, on_press: Callback, on_release: Callback, user32=None, kernel32=None,  # noqa: ANN001
                 last_error: Callable[[], int] | None = None) -> None:
        if user32 is None:
            user32 = ctypes.WinDLL("user32", use_last_error=True)
            user32.RegisterHotKey.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
            user32.UnregisterHotKey.argtypes = [ctypes.c_void_p, ctypes.c_int]
            user32.GetAsyncKeyState.restype = ctypes.c_short
            user32.GetMessageW.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
            user32.PeekMessageW.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint,
                                            ctypes.c_uint]
            user32.PostThreadMessageW.argtypes = [ctypes.c_uint32, ctypes.c_uint, ctypes.c_size_t, ctypes.c_ssize_t]
        self._user32, self._kernel32 = user32, kernel32 or ctypes.WinDLL("kernel32")
        self._last_error = last_error or ctypes.get_last_error  # per thread: read in the hotkey thread
        self._on_press, self._on_release = on_press, on_release
        self._vks: dict[int, int] = {}
        self._held: set[int] = set()
        self._relay = _Relay(self._hotkey)
        self._poll = QTimer(interval=self.RELEASE_POLL_MS, timeout=self._check_releases)
        self._jobs: queue.Queue = queue.Queue()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lumen-hotkeys", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.START_TIMEOUT_S):
            raise Unavailable("the hotkey thread did not start")

    def _loop(self) -> None:
        msg = _Msg()
        self._user32.PeekMessageW(ctypes.byref(msg), None, 0, 0, PM_NOREMOVE)  # creates this thread's queue
        self._thread_id = self._kernel32.GetCurrentThreadId()
        self._ready.set()
        while self._user32.GetMessageW(ctypes.byref(msg), None, 0, 0) > 0:  # 0: WM_QUIT, -1: error
            if msg.message == WM_HOTKEY:
                self._relay.hotkey.emit(int(msg.wParam))
            elif msg.message == WM_APP:
                while not self._jobs.empty():
                    self._jobs.get_nowait()()

    def _in_thread(self, job: Callable[[], object]) -> object:
        """Run ``job`` in the hotkey thread and return its result (or raise its exception)."""
        done, answer = threading.Event(), {}

        def run() -> None:
            try:
                answer["value"] = job()
            except Exception as exc:  # noqa: BLE001 - raised again in the caller's thread
                answer["error"] = exc
            done.set()

        self._jobs.put(run)
        self._user32.PostThreadMessageW(self._thread_id, WM_APP, 0, 0)
        if not done.wait(self.START_TIMEOUT_S):
            raise OSError("the hotkey thread does not answer")
        if "error" in answer:
            raise answer["error"]
        return answer["value"]

    def register(self, key_id: int, combo: Combo, any_modifiers: bool = False) -> bool:
        vk = windows_vk(combo.key)
        masks = {"ctrl": MOD_CONTROL, "shift": MOD_SHIFT, "alt": MOD_ALT, "meta": MOD_WIN}
        mods = MOD_NOREPEAT | sum(masks[m] for m in combo.modifiers)

        def register_here() -> int:  # 0 when registered, else GetLastError (thread-local)
            return 0 if self._user32.RegisterHotKey(None, key_id, mods, vk) else self._last_error() or -1

        error = self._in_thread(register_here)
        if error == ERROR_HOTKEY_ALREADY_REGISTERED:
            return False
        if error:
            raise OSError(error, f"RegisterHotKey failed for {combo.normal()}")
        self._vks[key_id] = vk
        return True

    def unregister(self, key_id: int) -> None:
        if self._vks.pop(key_id, None) is not None:
            self._in_thread(lambda: self._user32.UnregisterHotKey(None, key_id))
        self._held.discard(key_id)

    def close(self) -> None:
        self._poll.stop()
        for key_id in list(self._vks):
            self.unregister(key_id)
        self._user32.PostThreadMessageW(self._thread_id, WM_QUIT, 0, 0)
        self._thread.join(self.START_TIMEOUT_S)

    def _hotkey(self, key_id: int) -> None:
        if key_id in self._vks and key_id not in self._held:
            self._held.add(key_id)
            self._poll.start()
            self._on_press(key_id)

    def _check_releases(self) -> None:
        for key_id in list(self._held):
            if not self._user32.GetAsyncKeyState(self._vks[key_id]) & 0x8000:
                self._held.discard(key_id)
                self._on_release(key_id)
        if not self._held:
            self._poll.stop()


# ---------------------------------------------------------------------------------------- macOS
def _four_cc(text: str) -> int:
    return int.from_bytes(text.encode("ascii"), "big")


CMD_KEY, SHIFT_KEY, OPTION_KEY, CONTROL_KEY = 0x100, 0x200, 0x800, 0x1000
EVENT_HOTKEY_EXISTS = -9878
K_EVENT_CLASS_KEYBOARD, K_EVENT_HOTKEY_PRESSED, K_EVENT_HOTKEY_RELEASED = _four_cc("keyb"), 5, 6
K_EVENT_PARAM_DIRECT_OBJECT, TYPE_EVENT_HOTKEY_ID = _four_cc("----"), _four_cc("hkid")
SIGNATURE = _four_cc("LUMN")
_MAC_KEYCODES = {  # Carbon Events.h kVK_*: positions on the ANSI layout
    **dict(zip("asdfhgzxcv", range(0x00, 0x0A))), "b": 0x0B, "q": 0x0C, "w": 0x0D, "e": 0x0E, "r": 0x0F,
    "y": 0x10, "t": 0x11, "1": 0x12, "2": 0x13, "3": 0x14, "4": 0x15, "6": 0x16, "5": 0x17, "9": 0x19,
    "7": 0x1A, "8": 0x1C, "0": 0x1D, "o": 0x1F, "u": 0x20, "i": 0x22, "p": 0x23, "enter": 0x24, "l": 0x25,
    "j": 0x26, "k": 0x28, "n": 0x2D, "m": 0x2E, "tab": 0x30, "space": 0x31, "backspace": 0x33,
    "escape": 0x35, "kp_enter": 0x4C, "home": 0x73, "page_up": 0x74, "delete": 0x75, "end": 0x77,
    "page_down": 0x79, "left": 0x7B, "right": 0x7C, "down": 0x7D, "up": 0x7E,
    "kp0": 0x52, "kp1": 0x53, "kp2": 0x54, "kp3": 0x55, "kp4": 0x56, "kp5": 0x57, "kp6": 0x58, "kp7": 0x59,
    "kp8": 0x5B, "kp9": 0x5C,
    "f1": 0x7A, "f2": 0x78, "f3": 0x63, "f4": 0x76, "f5": 0x60, "f6": 0x61, "f7": 0x62, "f8": 0x64,
    "f9": 0x65, "f10": 0x6D, "f11": 0x67, "f12": 0x6F, "f13": 0x69, "f14": 0x6B, "f15": 0x71, "f16": 0x6A,
    "f17": 0x40, "f18": 0x4F, "f19": 0x50, "f20": 0x5A,
}


class EventHotKeyID(ctypes.Structure):
    _fields_ = [("signature", ctypes.c_uint32), ("id", ctypes.c_uint32)]


class EventTypeSpec(ctypes.Structure):
    _fields_ = [("eventClass", ctypes.c_uint32), ("eventKind", ctypes.c_uint32)]


EventHandlerProc = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _load_carbon():  # noqa: ANN202
    carbon = ctypes.CDLL("/System/Library/Frameworks/Carbon.framework/Carbon")
    carbon.GetApplicationEventTarget.restype = ctypes.c_void_p
    carbon.InstallEventHandler.argtypes = [ctypes.c_void_p, EventHandlerProc, ctypes.c_uint32,
                                           ctypes.POINTER(EventTypeSpec), ctypes.c_void_p,
                                           ctypes.POINTER(ctypes.c_void_p)]
    carbon.RegisterEventHotKey.argtypes = [ctypes.c_uint32, ctypes.c_uint32, EventHotKeyID, ctypes.c_void_p,
                                           ctypes.c_uint32, ctypes.POINTER(ctypes.c_void_p)]
    carbon.UnregisterEventHotKey.argtypes = [ctypes.c_void_p]
    carbon.RemoveEventHandler.argtypes = [ctypes.c_void_p]
    carbon.GetEventKind.argtypes = [ctypes.c_void_p]
    carbon.GetEventKind.restype = ctypes.c_uint32
    carbon.GetEventParameter.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p,
                                         ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]
    return carbon


class MacBackend:
    def __init__(self, on_press: Callback, on_release: Callback, carbon=None) -> None:  # noqa: ANN001
        self._carbon = carbon or _load_carbon()
        self._on_press, self._on_release = on_press, on_release
        self._refs: dict[int, ctypes.c_void_p] = {}
        self._target = self._carbon.GetApplicationEventTarget()
        self._proc = EventHandlerProc(self._handle)  # kept alive as long as the handler is installed
        specs = (EventTypeSpec * 2)(EventTypeSpec(K_EVENT_CLASS_KEYBOARD, K_EVENT_HOTKEY_PRESSED),
                                    EventTypeSpec(K_EVENT_CLASS_KEYBOARD, K_EVENT_HOTKEY_RELEASED))
        self._handler = ctypes.c_void_p()
        status = self._carbon.InstallEventHandler(self._target, self._proc, 2, specs, None,
                                                  ctypes.byref(self._handler))
        if status != 0:
            raise Unavailable(f"macOS refused the hotkey handler (error {status})")

    def register(self, key_id: int, combo: Combo, any_modifiers: bool = False) -> bool:
        if combo.key not in _MAC_KEYCODES:
            raise KeyError(combo.key)
        masks = {"ctrl": CONTROL_KEY, "shift": SHIFT_KEY, "alt": OPTION_KEY, "meta": CMD_KEY}
        mods = sum(masks[m] for m in combo.modifiers)
        ref = ctypes.c_void_p()
        status = self._carbon.RegisterEventHotKey(_MAC_KEYCODES[combo.key], mods, EventHotKeyID(SIGNATURE, key_id),
                                                  self._target, 0, ctypes.byref(ref))
        if status == EVENT_HOTKEY_EXISTS:
            return False
        if status != 0:
            raise OSError(status, f"RegisterEventHotKey failed for {combo.normal()}")
        self._refs[key_id] = ref
        return True

    def unregister(self, key_id: int) -> None:
        ref = self._refs.pop(key_id, None)
        if ref is not None:
            self._carbon.UnregisterEventHotKey(ref)

    def close(self) -> None:
        for key_id in list(self._refs):
            self.unregister(key_id)
        self._carbon.RemoveEventHandler(self._handler)

    def _handle(self, _call_ref, event, _user_data) -> int:  # noqa: ANN001
        hotkey = EventHotKeyID()
        status = self._carbon.GetEventParameter(event, K_EVENT_PARAM_DIRECT_OBJECT, TYPE_EVENT_HOTKEY_ID, None,
                                                ctypes.sizeof(hotkey), None, ctypes.byref(hotkey))
        if status != 0 or hotkey.signature != SIGNATURE or hotkey.id not in self._refs:
            return -9874  # eventNotHandledErr: someone else's
        kind = self._carbon.GetEventKind(event)
        (self._on_press if kind == K_EVENT_HOTKEY_PRESSED else self._on_release)(hotkey.id)
        return 0
