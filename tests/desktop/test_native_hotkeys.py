"""The Windows and macOS hotkey registrations, against recorded fakes of user32 and Carbon.

The fakes record every native call with its exact arguments (modifier masks, virtual key codes,
ids, the handler's event types) and answer as the OS documents: 0 + ERROR_HOTKEY_ALREADY_REGISTERED
or eventHotKeyExistsErr for a key another program holds. Only the OS itself is faked: the real
service, backend, ctypes structures and (macOS) the real ctypes callback trampoline run.
"""

from __future__ import annotations

import threading

from desktop import native_hotkeys as nh
from desktop.hotkeys import MODAL_KEYS, HotkeyService


class RecordedUser32:
    """user32 and kernel32 as Windows documents them: a thread hotkey (hwnd NULL) belongs to the
    thread that registered it, and its WM_HOTKEY is posted to that thread's queue only; each
    thread has its own queue, read by GetMessageW (blocking) and filled by PostThreadMessageW.
    ``press(vk)`` is the keyboard. Calls are recorded with the thread that made them."""

    def __init__(self, taken_vks: set[int]) -> None:
        self.calls: list[tuple] = []
        self.threads: list[tuple[str, int]] = []  # (call, thread ident) of every hotkey call
        self.taken, self.down = taken_vks, set()
        self.hotkeys: dict[int, tuple[int, int]] = {}  # vk -> (owning thread, id)
        self.queues: dict[int, list[tuple[int, int]]] = {}
        self.changed = threading.Condition()

    def GetCurrentThreadId(self) -> int:  # noqa: N802 - kernel32
        return threading.get_ident()

    def PeekMessageW(self, msg, hwnd, first, last, remove):  # noqa: ANN001, ANN201, N802
        with self.changed:
            self.queues.setdefault(threading.get_ident(), [])
        return 0

    def GetMessageW(self, msg, hwnd, first, last):  # noqa: ANN001, ANN201, N802
        queue = self.queues[threading.get_ident()]
        with self.changed:
            self.changed.wait_for(lambda: queue)
            message, wparam = queue.pop(0)
        msg._obj.message, msg._obj.wParam = message, wparam
        return 0 if message == nh.WM_QUIT else 1

    def PostThreadMessageW(self, thread, message, wparam, lparam):  # noqa: ANN001, ANN201, N802
        with self.changed:
            if thread not in self.queues:
                return 0  # no message queue there
            self.queues[thread].append((message, wparam))
            self.changed.notify_all()
        return 1

    def RegisterHotKey(self, hwnd, key_id, mods, vk):  # noqa: ANN001, ANN201, N802
        self.calls.append(("RegisterHotKey", hwnd, key_id, mods, vk))
        self.threads.append(("RegisterHotKey", threading.get_ident()))
        if vk in self.taken:
            return 0
        self.hotkeys[vk] = (threading.get_ident(), key_id)
        return 1

    def UnregisterHotKey(self, hwnd, key_id):  # noqa: ANN001, ANN201, N802
        self.calls.append(("UnregisterHotKey", hwnd, key_id))
        self.threads.append(("UnregisterHotKey", threading.get_ident()))
        for vk, (thread, registered) in list(self.hotkeys.items()):
            if registered == key_id and thread == threading.get_ident():
                del self.hotkeys[vk]
        return 1

    def GetAsyncKeyState(self, vk):  # noqa: ANN001, ANN201, N802
        return -0x8000 if vk in self.down else 0  # a SHORT: the high bit set while down

    def press(self, vk: int) -> bool:
        """The key goes down: WM_HOTKEY to the registering thread's queue (False: not a hotkey)."""
        if vk not in self.hotkeys:
            return False
        thread, key_id = self.hotkeys[vk]
        return bool(self.PostThreadMessageW(thread, nh.WM_HOTKEY, key_id, 0))


def windows_backend(user32: RecordedUser32, backends: list):  # noqa: ANN201
    def make(press, release):  # noqa: ANN001, ANN202
        backends.append(nh.WindowsBackend(press, release, user32, user32, lambda: 1409))
        return backends[-1]
    return make


def test_windows_register_hotkey_calls_and_wm_hotkey(qtbot) -> None:  # noqa: ANN001
    user32 = RecordedUser32(taken_vks={0x76})  # F7 held by another program
    backends = []
    service = HotkeyService(windows_backend(user32, backends))
    with qtbot.waitSignal(service.taken) as taken:
        assert service.start({"describe_screen": "Ctrl+Shift+F5", "describe_monitor": "Ctrl+Shift+F7",
                              "voice": "Meta+Alt+V"})
    assert taken.args == ["Ctrl+Shift+F7", "describe_monitor"]
    norep = nh.MOD_NOREPEAT
    assert user32.calls == [
        ("RegisterHotKey", None, 1, nh.MOD_CONTROL | nh.MOD_SHIFT | norep, 0x74),
        ("RegisterHotKey", None, 2, nh.MOD_CONTROL | nh.MOD_SHIFT | norep, 0x76),
        ("RegisterHotKey", None, 3, nh.MOD_ALT | nh.MOD_WIN | norep, ord("V")),
    ]
    with qtbot.waitSignal(service.activated) as activated:
        assert user32.press(0x74)
    assert activated.args == ["describe_screen"]

    # Push-to-talk: no key-up comes for a hotkey, so the key's state is polled until it is up.
    releases = []
    service.released.connect(releases.append)
    qtbot.waitUntil(lambda: releases == ["describe_screen"], timeout=2000)  # F5 is not down
    user32.down.add(ord("V"))
    with qtbot.waitSignal(service.activated, check_params_cb=lambda a: a == "voice"):
        user32.press(ord("V"))
    qtbot.wait(150)
    assert releases == ["describe_screen"]  # V still held
    user32.down.clear()
    qtbot.waitUntil(lambda: releases == ["describe_screen", "voice"], timeout=2000)

    # The layer's keys exist only while it is open: bare keys, then unregistered.
    user32.calls.clear()
    service.begin_modal()
    registered = [c for c in user32.calls if c[0] == "RegisterHotKey"]
    assert ("RegisterHotKey", None, 1000 + MODAL_KEYS.index("s"), norep, ord("S")) in registered
    assert ("RegisterHotKey", None, 1000 + MODAL_KEYS.index("kp7"), norep, 0x67) in registered
    assert ("RegisterHotKey", None, 1000 + MODAL_KEYS.index("escape"), norep, 0x1B) in registered
    keys = []
    service.key.connect(keys.append)
    with qtbot.waitSignal(service.key):
        user32.press(0x67)
    assert keys == ["7"]
    user32.calls.clear()
    service.end_modal()
    assert sorted(c[2] for c in user32.calls) == sorted(c[2] for c in registered)
    assert all(c[0] == "UnregisterHotKey" for c in user32.calls)
    user32.calls.clear()
    service.stop()
    assert user32.calls == [("UnregisterHotKey", None, 1), ("UnregisterHotKey", None, 3)]  # F7 was never ours
    assert not backends[0]._thread.is_alive()  # WM_QUIT ended its message loop


def test_windows_hotkeys_work_while_the_gui_thread_is_in_a_modal_loop(qtbot) -> None:  # noqa: ANN001
    """Every registration is made by the backend's own thread, which reads its queue with
    GetMessageW: WM_HOTKEY never goes to the GUI thread's queue, where a menu's, a message box's or
    a window move's modal loop would take it without Qt seeing it."""
    from PySide6.QtCore import QEventLoop, QTimer

    user32 = RecordedUser32(taken_vks=set())
    backends = []
    service = HotkeyService(windows_backend(user32, backends))
    assert service.start({"describe_screen": "Ctrl+Shift+F5"})
    service.begin_modal()
    gui = threading.get_ident()
    owners = {thread for _, thread in user32.threads}
    assert owners == {backends[0]._thread.ident} and gui not in owners
    assert gui not in user32.queues  # the GUI thread's queue is never used for hotkeys
    service.end_modal()

    activated = []
    service.activated.connect(activated.append)
    modal = QEventLoop()  # as QMenu.exec / QMessageBox.exec: the GUI thread is inside a nested loop
    service.activated.connect(lambda action: modal.quit())
    QTimer.singleShot(50, lambda: user32.press(0x74))
    QTimer.singleShot(5000, modal.quit)
    modal.exec()
    assert activated == ["describe_screen"]
    service.stop()


class RecordedCarbon:
    TARGET, HANDLER = 0xA11, 0xB22

    def __init__(self, taken_codes: set[int]) -> None:
        self.calls: list[tuple] = []
        self.taken, self.proc, self.events = taken_codes, None, {}

    def GetApplicationEventTarget(self):  # noqa: ANN201, N802
        return self.TARGET

    def InstallEventHandler(self, target, proc, count, specs, user_data, out_ref):  # noqa: ANN001, ANN201, N802
        self.proc = proc
        self.calls.append(("InstallEventHandler", target, count,
                           [(specs[i].eventClass, specs[i].eventKind) for i in range(count)], user_data))
        out_ref._obj.value = self.HANDLER
        return 0

    def RegisterEventHotKey(self, code, mods, hotkey_id, target, options, out_ref):  # noqa: ANN001, ANN201, N802
        self.calls.append(("RegisterEventHotKey", code, mods, hotkey_id.signature, hotkey_id.id, target, options))
        if code in self.taken:
            return nh.EVENT_HOTKEY_EXISTS
        out_ref._obj.value = 0x5000 + hotkey_id.id
        return 0

    def UnregisterEventHotKey(self, ref):  # noqa: ANN001, ANN201, N802
        self.calls.append(("UnregisterEventHotKey", ref.value))
        return 0

    def RemoveEventHandler(self, ref):  # noqa: ANN001, ANN201, N802
        self.calls.append(("RemoveEventHandler", ref.value))
        return 0

    def GetEventParameter(self, event, name, kind, out_type, size, out_size, out):  # noqa: ANN001, ANN201, N802
        assert (name, kind, out_type, size, out_size) == (nh.K_EVENT_PARAM_DIRECT_OBJECT, nh.TYPE_EVENT_HOTKEY_ID,
                                                          None, 8, None)
        out._obj.signature, out._obj.id = self.events[event][0]
        return 0

    def GetEventKind(self, event):  # noqa: ANN001, ANN201, N802
        return self.events[event][1]

    def send(self, event: int, signature: int, key_id: int, kind: int) -> int:
        self.events[event] = ((signature, key_id), kind)
        return self.proc(None, event, None)  # through the real ctypes callback


def test_macos_carbon_register_event_hotkey_calls_and_events(qtbot) -> None:  # noqa: ANN001
    carbon = RecordedCarbon(taken_codes={0x62})  # F7 held by another program
    service = HotkeyService(lambda p, r: nh.MacBackend(p, r, carbon))
    with qtbot.waitSignal(service.taken) as taken:
        assert service.start({"describe_screen": "Ctrl+Shift+F5", "describe_monitor": "Ctrl+Shift+F7",
                              "voice": "Meta+Alt+V"})
    assert taken.args == ["Ctrl+Shift+F7", "describe_monitor"]
    sig, target = nh.SIGNATURE, carbon.TARGET
    assert carbon.calls == [
        ("InstallEventHandler", target, 2, [(nh.K_EVENT_CLASS_KEYBOARD, 5), (nh.K_EVENT_CLASS_KEYBOARD, 6)], None),
        ("RegisterEventHotKey", 0x60, nh.CONTROL_KEY | nh.SHIFT_KEY, sig, 1, target, 0),
        ("RegisterEventHotKey", 0x62, nh.CONTROL_KEY | nh.SHIFT_KEY, sig, 2, target, 0),
        ("RegisterEventHotKey", 0x09, nh.CMD_KEY | nh.OPTION_KEY, sig, 3, target, 0),
    ]
    with qtbot.waitSignal(service.activated) as activated:
        assert carbon.send(0xE1, sig, 3, nh.K_EVENT_HOTKEY_PRESSED) == 0
    with qtbot.waitSignal(service.released) as released:
        assert carbon.send(0xE2, sig, 3, nh.K_EVENT_HOTKEY_RELEASED) == 0
    assert activated.args == released.args == ["voice"]
    assert carbon.send(0xE3, nh._four_cc("OTHR"), 3, nh.K_EVENT_HOTKEY_PRESSED) == -9874  # another app's

    carbon.calls.clear()
    service.begin_modal()
    assert ("RegisterEventHotKey", 0x01, 0, sig, 1000 + MODAL_KEYS.index("s"), target, 0) in carbon.calls
    service.end_modal()
    carbon.calls.clear()
    service.stop()
    assert carbon.calls == [("UnregisterEventHotKey", 0x5001), ("UnregisterEventHotKey", 0x5003),
                            ("RemoveEventHandler", carbon.HANDLER)]
