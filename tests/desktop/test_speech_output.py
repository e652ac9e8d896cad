"""The speech-output layer: detection re-checked as readers come and go, routing, never silent."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from desktop.settings import SpeechOutput
from desktop.speech_output.speaker import Priority
from desktop.speech_output import Probe, ReaderError, ReaderWatch, SpeechRouter, linux
from tests.fakes import RecordingReader, RecordingSpeaker


@pytest.fixture
def stand_in_orca(tmp_path):  # noqa: ANN001
    """A process of this user named orca, as Orca's script is."""
    shutil.copy("/bin/sleep", tmp_path / "orca")
    proc = subprocess.Popen([str(tmp_path / "orca"), "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Opened(RecordingReader):
    def __init__(self, kind: str) -> None:
        super().__init__(active=True)
        self.kind, self.closed = kind, False

    def close(self) -> None:
        self.closed = True


def watch_of(probes: list[Probe], clock: Clock, fail_open: bool = False) -> tuple[ReaderWatch, list[Opened]]:
    opened: list[Opened] = []

    def opener(kind: str) -> Opened:
        if fail_open:
            raise ReaderError("cannot connect")
        opened.append(Opened(kind))
        return opened[-1]

    return ReaderWatch(lambda: probes[0], opener, ttl=2.0, clock=clock), opened


def test_the_reader_is_detected_again_after_the_ttl_and_kept_open_while_it_runs() -> None:
    clock, probes = Clock(), [Probe(None)]
    watch, opened = watch_of(probes, clock)
    assert watch.current() is None
    probes[0] = Probe("nvda", "NVDA", braille=True)
    assert watch.current() is None  # not asked again within the ttl
    clock.now += 2.0
    first = watch.current()
    assert first is opened[0] and first.kind == "nvda"
    clock.now += 5.0
    assert watch.current() is first and len(opened) == 1  # same reader: the same connection
    probes[0] = Probe(None)  # the user quit NVDA
    clock.now += 2.0
    assert watch.current() is None and first.closed
    probes[0] = Probe("jaws", "JAWS")
    clock.now += 2.0
    assert watch.current().kind == "jaws"


def test_a_failed_reader_rests_for_the_cooldown_then_is_opened_again() -> None:
    clock, probes = Clock(), [Probe("orca-speechd")]
    watch, opened = watch_of(probes, clock)
    reader = watch.current()
    watch.forget()  # e.g. the server stopped answering
    assert reader.closed
    assert watch.current() is None  # the own voice, without waiting for the timeout again
    clock.now += 2.0
    assert watch.current() is None
    clock.now += 3.0  # the 5 s cooldown is over
    assert watch.current() is opened[1]
    watch.forget()
    probes[0] = Probe("jaws")  # another reader is not held back by Orca's failure
    assert watch.current().kind == "jaws"


def test_a_reader_that_cannot_be_opened_means_the_own_voice() -> None:
    watch, _ = watch_of([Probe("nvda")], Clock(), fail_open=True)
    router = SpeechRouter(speaker := RecordingSpeaker(), watch)
    router.say("Describing screen.", Priority.NOW, True, SpeechOutput.SCREEN_READER)
    assert speaker.spoken == [("Describing screen.", Priority.NOW)]


def test_voice_mode_never_asks_the_reader() -> None:
    reader = RecordingReader(active=True)
    router = SpeechRouter(speaker := RecordingSpeaker(), reader)
    router.say("Done.", Priority.NEXT, False, SpeechOutput.VOICE)
    router.stop()
    assert speaker.texts == ["Done."] and reader.spoken == [] and reader.cancels == 0


def test_stop_cancels_the_reader_only_after_lumen_spoke_through_it() -> None:
    """Stop must not cut what the user's reader says on its own (e.g. the focused control)."""
    reader = RecordingReader(active=True)
    router = SpeechRouter(RecordingSpeaker(), reader)
    router.stop()
    assert reader.cancels == 0
    router.say("A cat.", Priority.NORMAL, False, SpeechOutput.AUTO)
    router.stop()
    router.stop()
    assert reader.cancels == 1


def test_a_reader_without_braille_only_speaks() -> None:
    reader = RecordingReader(active=True)
    reader.supports_braille = False
    SpeechRouter(RecordingSpeaker(), reader).say("A cat.", Priority.NORMAL, False, SpeechOutput.AUTO)
    assert reader.spoken == [("A cat.", False)] and reader.brailled == []


def test_orca_is_found_by_its_process_of_this_user(tmp_path) -> None:  # noqa: ANN001
    proc = tmp_path / "proc"
    (proc / "12").mkdir(parents=True)
    (proc / "12" / "comm").write_text("python3\n")
    (proc / "12" / "cmdline").write_bytes(b"/usr/bin/python3\0/usr/bin/orca\0--replace\0")
    (proc / "13").mkdir()
    (proc / "13" / "comm").write_text("bash\n")
    (proc / "13" / "cmdline").write_bytes(b"bash\0-c\0echo orca\0")
    assert linux.orca_running(proc)
    (proc / "12" / "cmdline").write_bytes(b"/usr/bin/python3\0/usr/bin/orcas\0")
    assert not linux.orca_running(proc)
    (proc / "14").mkdir()
    (proc / "14" / "comm").write_text("orca\n")
    (proc / "14" / "cmdline").write_bytes(b"")
    assert linux.orca_running(proc)


def test_speech_dispatcher_refuses_network_addresses(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("SPEECHD_ADDRESS", "inet_socket:192.0.2.1:6560")
    reader = linux.SpeechDispatcher()
    try:
        reader.speak("hello")
    except ReaderError as exc:
        assert "unix sockets" in str(exc)
    else:
        raise AssertionError("an inet address must not be used")


def test_settings_and_lumen_check_report_the_same_reader(qtbot, stand_in_orca, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("BRLAPI_HOST", ":65535")  # not this machine's BRLTTY, if one runs: no braille path
    from desktop.check import check_screen_reader
    from desktop.settings import Settings
    from desktop.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    assert dialog.reader_status.text() == check_screen_reader().summary
    assert "Orca (through Speech Dispatcher)" in dialog.reader_status.text()
    assert "Braille: none through this path." in dialog.reader_status.text()


def test_braille_through_brltty_uses_only_a_local_brlapi_socket(monkeypatch) -> None:  # noqa: ANN001
    from desktop.speech_output import braille

    for host, socket_path in (("", braille.SOCKETS / "0"), (":0", braille.SOCKETS / "0"), (":12", braille.SOCKETS / "12"),
                              ("braille.example.org:0", None), ("127.0.0.1:1", None), ("nonsense", None)):
        monkeypatch.setenv("BRLAPI_HOST", host)
        assert braille.local_socket() == socket_path, host
        if socket_path is None:
            assert not braille.available()  # a remote BrlAPI is never used: no network connection
