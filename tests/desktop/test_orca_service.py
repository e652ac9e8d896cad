"""Orca >= 49's D-Bus service, against a fake ``org.gnome.Orca.Service`` on a private session bus
(this machine's Orca is 43, which has no service): the calls Lumen makes are the ones Orca's
dbus_service.py answers (PresentMessage(s) -> b; module ExecuteCommand(s, b) -> b)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from desktop import messages
from desktop.settings import SpeechOutput
from desktop.speech_output import ReaderWatch, probe
from tests.desktop.conftest import make_rig
from tests.desktop.reader_rigs import Procs, start_session_bus
from tests.fakes import ScriptedEngine

pytestmark = pytest.mark.skipif(not shutil.which("dbus-daemon"), reason="needs dbus-daemon (package dbus)")


class FakeOrcaService:
    """Owns the bus name and records (path, interface, member, args) of every call."""

    def __init__(self, address: str, present_result: bool = True) -> None:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self.calls: list[tuple[str, str, str, tuple]] = []
        self.present_result = present_result
        self._conn = open_dbus_connection(bus=address)
        self._conn.send_and_get_reply(message_bus.RequestName("org.gnome.Orca.Service"), timeout=2)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from jeepney import HeaderFields, MessageType, new_error, new_method_return

        while self._running:
            try:
                msg = self._conn.receive(timeout=0.1)
            except TimeoutError:
                continue
            except OSError:
                return
            if msg.header.message_type != MessageType.method_call:
                continue
            f = msg.header.fields
            call = (f[HeaderFields.path], f.get(HeaderFields.interface, ""), f[HeaderFields.member], msg.body)
            self.calls.append(call)
            if call[2] == "PresentMessage" and call[0] == "/org/gnome/Orca/Service":
                self._conn.send(new_method_return(msg, "b", (self.present_result,)))
            elif call[2] == "ExecuteCommand" and call[0] == "/org/gnome/Orca/Service/SpeechAndVerbosityManager":
                self._conn.send(new_method_return(msg, "b", (True,)))
            else:
                self._conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", ("no",)))

    def close(self) -> None:
        self._running = False
        self._thread.join(2)
        self._conn.close()


@pytest.fixture
def orca_bus(tmp_path, monkeypatch):  # noqa: ANN001
    procs = Procs()
    try:
        env = start_session_bus(procs, Path(tmp_path), accessibility=False)
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", env["DBUS_SESSION_BUS_ADDRESS"])
        yield env["DBUS_SESSION_BUS_ADDRESS"]
    finally:
        procs.stop()


def test_orca_service_is_detected_and_gets_speech_braille_and_interrupts(orca_bus, qtbot) -> None:  # noqa: ANN001
    assert probe().kind is None
    service = FakeOrcaService(orca_bus)
    try:
        found = probe()
        assert (found.kind, found.label, found.braille) == ("orca-service", "Orca", True)
        from desktop.check import check_screen_reader

        assert check_screen_reader().summary == ("Lumen speaks through Orca. "
                                                 "Braille: messages and answers are also shown on the braille display (through Orca).")
        rig = make_rig(ScriptedEngine(), readers=ReaderWatch(), speech_output=SpeechOutput.AUTO)
        try:
            rig.controller.handle_action("describe_screen")
            qtbot.waitUntil(lambda: bool(rig.controller.conversation.last_answer), timeout=10000)
            qtbot.waitUntil(lambda: len([c for c in service.calls if c[2] == "PresentMessage"]) >= 5, timeout=5000)
            rig.controller.handle_action("stop")
        finally:
            rig.client.shutdown()
            rig.reader.forget()
        interrupt = ("/org/gnome/Orca/Service/SpeechAndVerbosityManager", "org.gnome.Orca.Module", "ExecuteCommand",
                     ("InterruptSpeech", False))
        present = [c[3][0] for c in service.calls if c[2] == "PresentMessage"]
        assert present[:5] == [messages.DESCRIBING_SCREEN, "A window with a button.", "The button says OK.",
                               "Nothing else is visible.", messages.DONE]  # one call each: Orca speaks and brailles it
        ack = service.calls.index(("/org/gnome/Orca/Service", "org.gnome.Orca.Service", "PresentMessage",
                                   (messages.DESCRIBING_SCREEN,)))
        assert service.calls[ack - 1] == interrupt  # the acknowledgement interrupts Orca; answers do not
        done = service.calls.index(("/org/gnome/Orca/Service", "org.gnome.Orca.Service", "PresentMessage",
                                    (messages.DONE,)))
        assert service.calls[done + 1] == interrupt  # Stop (then Stop's own word)
        assert rig.speaker.texts == []
    finally:
        service.close()


def test_orca_refusing_a_message_hands_it_to_the_own_voice(orca_bus) -> None:  # noqa: ANN001
    service = FakeOrcaService(orca_bus, present_result=False)
    try:
        rig = make_rig(ScriptedEngine(), readers=ReaderWatch(), speech_output=SpeechOutput.SCREEN_READER)
        try:
            rig.controller.notify("Model ready.")
            assert rig.speaker.texts == ["Model ready."]
        finally:
            rig.client.shutdown()
            rig.reader.forget()
    finally:
        service.close()
