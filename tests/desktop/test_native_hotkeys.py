"""The Windows and macOS hotkey registrations, against recorded fakes of user32 and Carbon.

The fakes record every native call with its exact arguments (modifier masks, virtual key codes,
ids, the handler's event types) and answer as the OS documents: 0 + ERROR_HOTKEY_ALREADY_REGISTERED
or eventHotKeyExistsErr for a key another program holds. Only the OS itself is faked: the real
service, backend, ctypes structures and (macOS) the real ctypes callback trampoline run.
"""

from __future__ import annotations

import ctypes

from PySide6.QtCore import QByteArray

from desktop import native_hotkeys as nh
from desktop.hotkeys import MODAL_KEYS, HotkeyService


class RecordedUser32:
    def __init__(self, taken_vks: set[int]) -> None:
        self.calls: list[tuple] = []
        self.taken, self.down = taken_vks, set()

    def RegisterHotKey(self, hwnd, key_id, mods, vk):  # noqa: ANN001, ANN201, N802
        self.calls.append(("RegisterHotKey", hwnd, key_id, mods, vk))
        return 0 if vk in self.taken else 1

    def UnregisterHotKey(self, hwnd, key_id):  # noqa: ANN001, ANN201, N802
        self.calls.append(("UnregisterHotKey", hwnd, key_id))
        return 1

    def GetAsyncKeyState(self, vk):  # noqa: ANN001, ANN201, N802
        return -0x8000 if vk in self.down else 0  # a SHORT: the high bit set while down


def wm_hotkey(backend: nh.WindowsBackend, key_id: int) -> bool:
    msg = nh._Msg(None, nh.WM_HOTKEY, key_id, 0, 0, 0, 0)
    handled, _ = backend._filter.nativeEventFilter(QByteArray(b"windows_generic_MSG"), ctypes.addressof(msg))
    return handled


def test_windows_register_hotkey_calls_and_wm_hotkey(qtbot) -> None:  # noqa: ANN001
    user32 = RecordedUser32(taken_vks={0x76})  # F7 held by another program
    backends = []
    service = HotkeyService(lambda p, r: backends.append(nh.WindowsBackend(p, r, user32, lambda: 1409))
                            or backends[-1])
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
    backend = backends[0]
    with qtbot.waitSignal(service.activated) as activated:
        assert wm_hotkey(backend, 1)
    assert activated.args == ["describe_screen"]
    other = nh._Msg(None, 0x0100, 0, 0, 0, 0, 0)  # WM_KEYDOWN: not ours, Qt handles it
    assert backend._filter.nativeEventFilter(QByteArray(b"windows_generic_MSG"), ctypes.addressof(other)) == (False, 0)

    # Push-to-talk: no key-up comes for a hotkey, so the key's state is polled until it is up.
    releases = []
    service.released.connect(releases.append)
    qtbot.waitUntil(lambda: releases == ["describe_screen"], timeout=2000)  # F5 is not down
    user32.down.add(ord("V"))
    with qtbot.waitSignal(service.activated, check_params_cb=lambda a: a == "voice"):
        wm_hotkey(backend, 3)
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
    wm_hotkey(backend, 1000 + MODAL_KEYS.index("kp7"))
    assert keys == ["7"]
    user32.calls.clear()
    service.end_modal()
    assert sorted(c[2] for c in user32.calls) == sorted(c[2] for c in registered)
    assert all(c[0] == "UnregisterHotKey" for c in user32.calls)
    user32.calls.clear()
    service.stop()
    assert user32.calls == [("UnregisterHotKey", None, 1), ("UnregisterHotKey", None, 3)]  # F7 was never ours


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
