"""Linux: Orca, through its D-Bus service (Orca >= 49) or through Speech Dispatcher (older Orca).

Orca before 49 (Debian 12 ships 43) has no handler for AT-SPI ``object:announcement`` and no
D-Bus service, so text reaches its user through Speech Dispatcher: the server, voice, rate and
audio device Orca itself speaks with. ``SpeechDispatcher`` is a small SSIP client (the protocol
python3-speechd speaks, over the same local socket); it speaks at SSIP's "message" priority, as
Orca does, so a polite message waits for Orca's current sentence instead of cutting it.

Braille there: Speech Dispatcher only speaks, so where BRLTTY runs (what Orca brailles through)
each text is also flashed on its display through BrlAPI (``braille.BrailleFlash``).

Orca >= 49 registers ``org.gnome.Orca.Service`` on the session bus: ``PresentMessage`` speaks and
flashes a message in braille with the user's Orca settings; ``InterruptSpeech`` stops it.

Detection (``probe``): Orca's D-Bus service has an owner, or an ``orca`` process of this user
runs. The AT-SPI ``org.a11y.Status.ScreenReaderEnabled`` flag is reported, not trusted: it says
the desktop's screen-reader setting is on, not that a reader runs (with it on and Orca not
running, Lumen's own voice must speak).

D-Bus calls use jeepney (pure Python, no libdbus, no GLib main loop to share with Qt).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from desktop.speech_output import braille
from desktop.speech_output.reader import Probe, ReaderError, ScreenReader

log = logging.getLogger(__name__)

ORCA_SERVICES = (("org.gnome.Orca.Service", "/org/gnome/Orca/Service"),
                 ("org.gnome.Orca1.Service", "/org/gnome/Orca1/Service"))
ORCA_SPEECH_MODULES = ("SpeechAndVerbosityManager", "SpeechManager")  # Orca 49 / later names
DBUS_TIMEOUT = 1.0


# ------------------------------------------------------------ detection
def probe() -> Probe:
    flag = screen_reader_flag()
    if orca_service() is not None:
        return Probe("orca-service", "Orca", braille=True, braille_via="Orca")
    if orca_running():
        on_brltty = braille.available()
        return Probe("orca-speechd", "Orca (through Speech Dispatcher)", braille=on_brltty,
                     braille_via="BRLTTY" if on_brltty else "")
    note = ("The desktop's screen reader setting is on, but no screen reader is running."
            if flag else "")
    return Probe(None, note=note)


def orca_running(proc: Path = Path("/proc")) -> bool:
    """An Orca process of this user (``orca`` is a Python script: its comm or its script name).
    Plain os calls: this runs on the GUI thread, at most every ReaderWatch.ttl seconds."""
    uid = os.getuid()
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        base = os.path.join(proc, pid)
        try:
            with open(os.path.join(base, "comm"), "rb") as f:
                comm = f.read().strip()
            if comm != b"orca" and not comm.startswith(b"python"):
                continue  # most processes: one small read
            if os.stat(base).st_uid != uid:
                continue
            if comm == b"orca":
                return True
            with open(os.path.join(base, "cmdline"), "rb") as f:
                argv = f.read().split(b"\0")[:2]
            if any(os.path.basename(a) == b"orca" for a in argv):
                return True
        except OSError:
            continue
    return False


def _session():  # noqa: ANN202
    from jeepney.io.blocking import open_dbus_connection

    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS") and not os.environ.get("XDG_RUNTIME_DIR"):
        raise ReaderError("no session bus")
    return open_dbus_connection(bus="SESSION")


def _call(conn, bus_name: str, path: str, interface: str, method: str, signature: str = "", body: tuple = ()):  # noqa: ANN001, ANN202
    from jeepney import DBusAddress, new_method_call
    from jeepney.wrappers import unwrap_msg

    msg = new_method_call(DBusAddress(path, bus_name=bus_name, interface=interface), method, signature, body)
    return unwrap_msg(conn.send_and_get_reply(msg, timeout=DBUS_TIMEOUT))


def _has_owner(conn, name: str) -> bool:  # noqa: ANN001
    return bool(_call(conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                      "NameHasOwner", "s", (name,))[0])


def orca_service() -> tuple[str, str] | None:
    """(bus name, object path) of a running Orca's D-Bus service, if any."""
    try:
        with _session() as conn:
            for name, path in ORCA_SERVICES:
                if _has_owner(conn, name):
                    return name, path
    except Exception as exc:  # noqa: BLE001 - no bus, no service
        log.debug("no Orca service: %r", exc)
    return None


def screen_reader_flag() -> bool | None:
    """The AT-SPI bus's ScreenReaderEnabled property (None: no accessibility bus)."""
    try:
        with _session() as conn:
            value = _call(conn, "org.a11y.Bus", "/org/a11y/bus", "org.freedesktop.DBus.Properties", "Get", "ss",
                          ("org.a11y.Status", "ScreenReaderEnabled"))[0]
            return bool(value[1])
    except Exception as exc:  # noqa: BLE001
        log.debug("no accessibility bus: %r", exc)
        return None


# ------------------------------------------------------------ Orca >= 49: its D-Bus service
class OrcaService(ScreenReader):
    name = "Orca"
    supports_braille = True

    def __init__(self) -> None:
        self._conn = None
        self._target: tuple[str, str] | None = None

    def _connection(self):  # noqa: ANN202
        if self._conn is None:
            try:
                self._conn = _session()
                self._target = next(((n, p) for n, p in ORCA_SERVICES if _has_owner(self._conn, n)), None)
            except Exception as exc:  # noqa: BLE001
                self.close()
                raise ReaderError(f"session bus: {exc!r}") from exc
            if self._target is None:
                self.close()
                raise ReaderError("Orca's D-Bus service is not running")
        return self._conn

    def _invoke(self, path_suffix: str, interface: str, method: str, signature: str, body: tuple) -> object:
        conn = self._connection()
        name, path = self._target  # type: ignore[misc]
        try:
            return _call(conn, name, path + path_suffix, interface, method, signature, body)[0]
        except Exception as exc:  # noqa: BLE001
            self.close()
            raise ReaderError(f"{method}: {exc!r}") from exc

    def output(self, text: str, interrupt: bool = False) -> None:
        """One PresentMessage: Orca speaks it and flashes it on the braille display."""
        if interrupt:
            self.cancel()
        if not self._invoke("", "org.gnome.Orca.Service", "PresentMessage", "s", (text,)):
            raise ReaderError("Orca did not present the message")

    def speak(self, text: str, interrupt: bool = False) -> None:
        self.output(text, interrupt)

    def braille(self, text: str) -> None:
        self.output(text)

    def cancel(self) -> None:
        errors = []
        for module in ORCA_SPEECH_MODULES:
            try:
                self._invoke(f"/{module}", "org.gnome.Orca.Module", "ExecuteCommand", "sb", ("InterruptSpeech", False))
                return
            except ReaderError as exc:
                errors.append(str(exc))
        raise ReaderError("; ".join(errors))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        self._conn, self._target = None, None


# ------------------------------------------------------------ older Orca: Speech Dispatcher (SSIP)
def speechd_socket() -> Path:
    """The server's socket: SPEECHD_ADDRESS (``unix_socket:PATH``), else the per-user default."""
    address = os.environ.get("SPEECHD_ADDRESS", "")
    if address:
        method, _, rest = address.partition(":")
        if method != "unix_socket" or not rest:
            raise ReaderError(f"only local unix sockets are used, not {method!r}")
        return Path(rest)
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return Path(runtime) / "speech-dispatcher" / "speechd.sock"


def brltty() -> braille.BrailleFlash | None:
    """BRLTTY's display for the Speech Dispatcher path, where BRLTTY runs (else no braille)."""
    if not braille.available():
        return None
    try:
        return braille.BrailleFlash()
    except RuntimeError as exc:
        log.info("no braille: %s", exc)
        return None


class SpeechDispatcher(ScreenReader):
    """Speech through the Speech Dispatcher server Orca uses. SSIP: one command per line (CRLF);
    replies are ``NNN-...`` continuation lines and one final ``NNN text`` line; 2xx is success;
    SPEAK's data ends with a line holding a single dot (lines starting with a dot get one more)."""

    name = "Orca (through Speech Dispatcher)"

    def __init__(self, path: Path | None = None, timeout: float = 1.0,  # a local server answers in ms
                 braille: braille.BrailleFlash | None = None) -> None:
        self._path, self._timeout, self._braille = path, timeout, braille
        self.supports_braille = braille is not None  # Speech Dispatcher only speaks: braille is BRLTTY's
        self._sock: socket.socket | None = None
        self._buffer = b""

    def braille(self, text: str) -> None:
        if self._braille is not None:
            self._braille.show(text)

    def speak(self, text: str, interrupt: bool = False) -> None:
        if interrupt:
            self._command("CANCEL self")
        self._command("SPEAK", expect="230")
        lines = [("." + line if line.startswith(".") else line) for line in text.replace("\r", "").split("\n")]
        self._command("\r\n".join(lines) + "\r\n.", expect="225")

    def cancel(self) -> None:
        if self._braille is not None:
            self._braille.release()
        if self._sock is not None:  # never spoke (or the connection is gone): nothing of ours to cancel
            self._command("CANCEL self")

    def close(self) -> None:
        if self._braille is not None:
            self._braille.close()
        if self._sock is not None:
            try:
                self._sock.sendall(b"QUIT\r\n")
            except OSError:
                pass
            self._sock.close()
        self._sock, self._buffer = None, b""

    def _connect(self) -> None:
        path = self._path or speechd_socket()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:
            sock.close()
            raise ReaderError(f"Speech Dispatcher is not reachable at {path}: {exc.strerror or exc}") from exc
        self._sock, self._buffer = sock, b""
        self._command("SET self CLIENT_NAME user:lumen:main")
        self._command("SET self PRIORITY message")

    def _command(self, line: str, expect: str = "2") -> str:
        if self._sock is None:
            self._connect()
        assert self._sock is not None
        try:
            self._sock.sendall(line.encode("utf-8") + b"\r\n")
            reply = self._reply()
        except (OSError, ValueError) as exc:
            self.close()
            raise ReaderError(f"Speech Dispatcher: {exc!r}") from exc
        if not reply.startswith(expect):
            raise ReaderError(f"Speech Dispatcher refused {line.split()[0]!r}: {reply}")
        return reply

    def _reply(self) -> str:
        assert self._sock is not None
        while True:
            while b"\r\n" not in self._buffer:
                chunk = self._sock.recv(4096)
                if not chunk:
                    raise ValueError("connection closed")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\r\n", 1)
            line = raw.decode("utf-8", "replace")
            if len(line) >= 4 and line[3] == " ":
                return line
