"""Windows and macOS back-ends, checked here against recorded fakes at the native boundary: the
NVDA controller client's exported functions, JAWS' FreedomSci.JawsApi COM object, user32, and
pyobjc's AppKit. Each scenario drives the real controller and asserts the exact native calls, so a
change that breaks a platform fails on Linux too. (Not run on the real readers: see README, Speech.)
"""

from __future__ import annotations

from types import SimpleNamespace

from desktop import messages
from desktop.settings import SpeechOutput
from desktop.speech_output import ReaderWatch, macos, windows
from tests.desktop.conftest import make_rig
from tests.fakes import ScriptedEngine

SENTENCES = ["A window with a button.", "The button says OK.", "Nothing else is visible."]


class FakeNvdaDll:
    """nvdaControllerClient.dll: each export returns an error_status_t (0: success)."""

    def __init__(self, running: bool = True, speak_error: int = 0) -> None:
        self.calls: list[tuple] = []
        self.running, self.speak_error = running, speak_error

    def nvdaController_testIfRunning(self) -> int:  # noqa: N802 - the DLL's export names
        self.calls.append(("testIfRunning",))
        return 0 if self.running else 1717  # RPC_S_UNKNOWN_IF: NVDA is not running

    def nvdaController_speakText(self, text: str) -> int:  # noqa: N802
        self.calls.append(("speakText", text))
        return self.speak_error

    def nvdaController_brailleMessage(self, text: str) -> int:  # noqa: N802
        self.calls.append(("brailleMessage", text))
        return 0

    def nvdaController_cancelSpeech(self) -> int:  # noqa: N802
        self.calls.append(("cancelSpeech",))
        return 0


class FakeJawsApi:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def SayString(self, text: str, flush: bool) -> bool:  # noqa: N802 - the COM method names
        self.calls.append(("SayString", text, flush))
        return True

    def StopSpeech(self) -> None:  # noqa: N802
        self.calls.append(("StopSpeech",))

    def RunFunction(self, call: str) -> bool:  # noqa: N802
        self.calls.append(("RunFunction", call))
        return True


class FakeNative(windows.Native):
    def __init__(self, dll: FakeNvdaDll | None = None, jaws_window: bool = False, flag: bool = False) -> None:
        self.dll, self.jaws_window, self.flag = dll, jaws_window, flag
        self.api = FakeJawsApi()

    def nvda(self):  # noqa: ANN201
        return self.dll

    def screen_reader_flag(self) -> bool:
        return self.flag

    def window_exists(self, window_class: str) -> bool:
        return self.jaws_window and window_class == "JFWUI2"

    def jaws(self):  # noqa: ANN201
        return self.api


def windows_rig(native: FakeNative, mode: SpeechOutput = SpeechOutput.AUTO):  # noqa: ANN201
    watch = ReaderWatch(lambda: windows.probe(native), lambda kind: windows.open_reader(kind, native))
    return make_rig(ScriptedEngine(), readers=watch, speech_output=mode)


def describe_then_stop(rig, qtbot) -> None:  # noqa: ANN001
    rig.controller.handle_action("describe_screen")
    qtbot.waitUntil(lambda: bool(rig.controller.conversation.last_answer), timeout=5000)
    rig.controller.handle_action("stop")


def test_nvda_speaks_brailles_interrupts_and_cancels_from_the_background(qtbot) -> None:  # noqa: ANN001
    dll = FakeNvdaDll()
    rig = windows_rig(FakeNative(dll))
    try:
        describe_then_stop(rig, qtbot)
    finally:
        rig.client.shutdown()
    calls = [c for c in dll.calls if c[0] != "testIfRunning"]
    expected = [("cancelSpeech",), ("speakText", messages.DESCRIBING_SCREEN), ("brailleMessage", messages.DESCRIBING_SCREEN)]
    for sentence in SENTENCES:  # polite: no cancel before an answer sentence
        expected += [("speakText", sentence), ("brailleMessage", sentence)]
    expected += [("speakText", messages.DONE), ("brailleMessage", messages.DONE), ("cancelSpeech",)]  # then Stop
    assert calls[: len(expected)] == expected
    assert rig.speaker.texts == []


def test_nvda_not_running_or_failing_means_the_own_voice(qtbot) -> None:  # noqa: ANN001
    assert windows.probe(FakeNative(FakeNvdaDll(running=False))).kind is None
    rig = windows_rig(FakeNative(FakeNvdaDll(speak_error=1717)), SpeechOutput.SCREEN_READER)
    try:
        rig.controller.notify("Model ready.")
        assert rig.speaker.texts == ["Model ready."]
    finally:
        rig.client.shutdown()


def test_jaws_says_strings_with_flush_for_interrupts_brailles_and_stops(qtbot) -> None:  # noqa: ANN001
    native = FakeNative(None, jaws_window=True)
    assert windows.probe(native).kind == "jaws"
    rig = windows_rig(native)
    try:
        describe_then_stop(rig, qtbot)
        rig.controller.speak_chunks(['Sign says "Exit"'])
    finally:
        rig.client.shutdown()
    calls = native.api.calls
    assert calls[:4] == [("SayString", messages.DESCRIBING_SCREEN, True),
                         ("RunFunction", f'BrailleString("{messages.DESCRIBING_SCREEN}")'),
                         ("SayString", SENTENCES[0], False), ("RunFunction", f'BrailleString("{SENTENCES[0]}")')]
    assert ("StopSpeech",) in calls
    assert calls[-2:] == [("SayString", 'Sign says "Exit"', True), ("RunFunction", "BrailleString(\"Sign says 'Exit'\")")]


def test_a_reader_lumen_cannot_address_is_noted_and_the_own_voice_speaks() -> None:
    found = windows.probe(FakeNative(None, flag=True))
    assert found.kind is None and "controller client was not found" in found.note
    assert windows.probe(FakeNative(None)).kind is None


class FakeAppKit:
    NSAccessibilityAnnouncementRequestedNotification = "AXAnnouncementRequested"
    NSAccessibilityAnnouncementKey = "AXAnnouncementKey"
    NSAccessibilityPriorityKey = "AXPriorityKey"
    NSAccessibilityPriorityLow = 10
    NSAccessibilityPriorityMedium = 50
    NSAccessibilityPriorityHigh = 90

    def __init__(self, voiceover: bool = True) -> None:
        self.posted: list[tuple] = []
        self.app = object()
        workspace = SimpleNamespace(isVoiceOverEnabled=lambda: voiceover)
        self.NSWorkspace = SimpleNamespace(sharedWorkspace=lambda: workspace)
        self.NSApplication = SimpleNamespace(sharedApplication=lambda: self.app)

    def NSAccessibilityPostNotificationWithUserInfo(self, element, name, info) -> None:  # noqa: ANN001, N802
        self.posted.append((element, name, dict(info)))


def test_voiceover_gets_announcements_high_priority_only_when_interrupting(qtbot) -> None:  # noqa: ANN001
    """High when interrupting; low (queued) otherwise: medium, like Apple's documented default, would
    interrupt the current speech and be cut by the next one, so streamed sentences would cut each other."""
    ak = FakeAppKit()
    assert macos.probe(ak).kind == "voiceover" and macos.probe(FakeAppKit(voiceover=False)).kind is None
    summary = macos.probe(ak).summary()  # lumen --check and Settings: honest about Stop and the background
    assert "no call to stop its speech" in summary and "unproven" in summary and "Braille: none" in summary
    watch = ReaderWatch(lambda: macos.probe(ak), lambda kind: macos.VoiceOver(ak))
    rig = make_rig(ScriptedEngine(), readers=watch, speech_output=SpeechOutput.AUTO)
    try:
        describe_then_stop(rig, qtbot)
    finally:
        rig.client.shutdown()
    note, key, prio = (FakeAppKit.NSAccessibilityAnnouncementRequestedNotification, FakeAppKit.NSAccessibilityAnnouncementKey,
                       FakeAppKit.NSAccessibilityPriorityKey)
    assert ak.posted[:4] == [(ak.app, note, {key: messages.DESCRIBING_SCREEN, prio: 90})] + [
        (ak.app, note, {key: s, prio: 10}) for s in SENTENCES]
    assert rig.speaker.texts == []


def test_voiceover_without_pyobjc_is_detected_by_defaults_and_left_to_the_own_voice() -> None:
    ran = []

    def run(argv, **kw):  # noqa: ANN001, ANN003, ANN202
        ran.append(argv)
        return SimpleNamespace(stdout="1\n")

    found = macos.probe(None, run) if macos._appkit() is None else None  # noqa: SLF001
    if found is not None:
        assert found.kind == "voiceover" and "pyobjc" in found.note
        assert ran == [["defaults", "read", "com.apple.universalaccess", "voiceOverOnOffKey"]]
