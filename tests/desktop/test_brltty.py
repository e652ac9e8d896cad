"""Linux, for real: braille without Orca's D-Bus service (Orca < 49) through a real BRLTTY.

BRLTTY runs unprivileged with its "vr" (Virtual) braille driver, whose display is this test: it
connects to the driver's socket, says it has 40 cells, and reads every text BRLTTY shows
(``Visual "..."`` lines), and it can press the display's keys. BRLTTY's BrlAPI server listens on a
private local socket number with a private key file. A stand-in for Orca's braille is a second
BrlAPI client in tty mode (what Orca 43 does): Lumen's flash must show over it and then give the
display back. The end-to-end test adds a real Speech Dispatcher (reader_rigs) and the real app.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from desktop import messages
from desktop.settings import SpeechOutput
from desktop.speech_output import ReaderWatch, braille, probe
from tests.desktop.conftest import make_rig
from tests.desktop.reader_rigs import Procs, wait_for
from tests.desktop.test_speech_dispatcher import SENTENCES, speechd, stand_in_orca  # noqa: F401 (fixture)
from tests.fakes import ScriptedEngine

_MISSING = [what for what, ok in (("brltty", shutil.which("brltty")),
                                  ("BRLTTY's vr driver", Path("/lib/brltty/libbrlttybvr.so").exists()),
                                  ("python3-brlapi", braille.load_brlapi()),
                                  (f"a writable {braille.SOCKETS}", os.access(braille.SOCKETS, os.W_OK)))
            if not ok]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"needs {', '.join(_MISSING)} (scripts/setup.sh --dev)")
CELLS = 40


class VirtualDisplay:
    """The far end of BRLTTY's vr driver: what the braille display shows, and its keys."""

    def __init__(self, path: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(str(path))
        self._sock.sendall(f"cells {CELLS}\n".encode())
        self.shown: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._sock.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.startswith(b'Visual "'):
                    self.shown.append(line[8:].rstrip(b'\r"').decode("latin-1").rstrip())

    @property
    def text(self) -> str:
        return self.shown[-1] if self.shown else ""

    def press(self, command: str) -> None:
        self._sock.sendall(f"{command}\n".encode())

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def brltty(tmp_path, monkeypatch):  # noqa: ANN001
    work = Path(tmp_path)
    number = next(n for n in iter(lambda: random.randint(20000, 60000), None)
                  if not (braille.SOCKETS / str(n)).exists())
    key = work / "brlapi.key"
    key.write_text(secrets.token_hex(16))
    vr = work / "vr.sock"
    procs = Procs()
    try:
        procs.start(["brltty", "-n", "-e", "-q", "-b", "vr", "-d", f"server:{vr}", "-x", "no", "-s", "no",
                     "-f", "/dev/null", "-F", str(work / "prefs"), "-W", str(work), "-U", str(work),
                     "-P", str(work / "brltty.pid"), "-A", f"auth=keyfile:{key},host=:{number}"],
                    dict(os.environ), work / "brltty.log")
        try:
            wait_for(vr.exists, 10, "BRLTTY's virtual driver socket")
        except TimeoutError:
            pytest.skip(f"brltty did not start here: {(work / 'brltty.log').read_text()[-500:]}")
        display = VirtualDisplay(vr)
        wait_for(lambda: (braille.SOCKETS / str(number)).exists() and display.shown, 10, "BRLTTY's BrlAPI socket")
        for name, value in (("BRLAPI_HOST", f":{number}"), ("BRLAPI_AUTH", str(key)), ("WINDOWPATH", "7")):
            monkeypatch.setenv(name, value)
        orca = braille.load_brlapi().Connection(f":{number}".encode(), str(key).encode())  # Orca 43's braille
        orca.enterTtyModeWithPath([])
        orca.writeText("Orca: Documents folder")
        wait_for(lambda: display.text == "Orca: Documents folder", 5, "Orca's braille on the display")
        yield display, orca
        orca.closeConnection()
        display.close()
    finally:
        procs.stop()


def test_a_flashed_message_shows_over_orcas_braille_then_gives_the_display_back(brltty) -> None:  # noqa: ANN001
    display, orca = brltty
    flash = braille.BrailleFlash(hold=1.0)
    try:
        flash.show(messages.DONE)
        wait_for(lambda: display.text == messages.DONE, 5, "the flash on the display")
        orca.writeText("Orca: Music folder")  # Orca's braille changes during the flash: the flash stays
        time.sleep(0.5)
        assert display.text == messages.DONE
        time.sleep(1.0)  # the hold is over: Lumen left tty mode, so Orca's next braille is shown again
        orca.writeText("Orca: Pictures folder")
        wait_for(lambda: display.text == "Orca: Pictures folder", 5, "Orca's braille back on the display")
    finally:
        flash.close()


def test_a_key_shows_the_next_part_of_a_long_text_and_after_the_last_gives_the_display_back(brltty) -> None:  # noqa: ANN001
    display, orca = brltty
    text = "A window titled Invoices with a table of twelve rows and a button labelled Print."
    flash = braille.BrailleFlash(hold=60.0)  # only the keys end it here
    try:
        flash.show(text)
        wait_for(lambda: display.text == "A window titled Invoices with a table of", 5, "the first part")
        display.press("FwinRt")
        wait_for(lambda: display.text == "twelve rows and a button labelled Print.", 5, "the second part")
        display.press("FwinRt")
        time.sleep(0.5)
        orca.writeText("Orca: Invoices table")
        wait_for(lambda: display.text == "Orca: Invoices table", 5, "Orca's braille back after the last part")
    finally:
        flash.close()


def test_stop_gives_the_display_back_at_once(brltty) -> None:  # noqa: ANN001
    display, orca = brltty
    flash = braille.BrailleFlash(hold=60.0)
    try:
        flash.show(messages.DONE)
        wait_for(lambda: display.text == messages.DONE, 5, "the flash")
        flash.release()
        time.sleep(0.5)
        orca.writeText("Orca: after Stop")
        wait_for(lambda: display.text == "Orca: after Stop", 5, "Orca's braille back after Stop")
    finally:
        flash.close()


def test_with_orca_43_and_brltty_each_spoken_answer_sentence_is_also_brailled(brltty, speechd, qtbot) -> None:  # noqa: ANN001, F811
    display, _ = brltty
    work, env, spoken, procs = speechd
    stand_in_orca(procs, work, env)
    found = probe()
    assert (found.kind, found.braille, found.braille_via) == ("orca-speechd", True, "BRLTTY")
    assert "braille display (through BRLTTY)" in found.summary()
    rig = make_rig(ScriptedEngine(), readers=ReaderWatch(), speech_output=SpeechOutput.AUTO)
    try:
        rig.controller.handle_action("describe_screen")
        qtbot.waitUntil(lambda: rig.controller.state.value == "idle" and bool(rig.controller.conversation.last_answer),
                        timeout=10000)
        wait_for(lambda: messages.DONE in display.shown, 10, "Done on the display")
        shown = [t for t in display.shown if t in {messages.DESCRIBING_SCREEN, *SENTENCES, messages.DONE}]
        assert shown == [messages.DESCRIBING_SCREEN, *SENTENCES, messages.DONE]  # spoken and brailled, in order
        assert rig.speaker.texts == []
    finally:
        rig.client.shutdown()
        rig.reader.forget()
