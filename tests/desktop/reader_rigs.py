"""Real screen-reader plumbing for the tests: a private D-Bus session (with the AT-SPI bus), a
PulseAudio null sink, and a Speech Dispatcher server whose only output module appends every text
it is asked to speak to a file (``spoken.txt``): what Orca or any direct client says lands there.

Each piece is a real program from Debian (dbus, at-spi2-core, pulseaudio, speech-dispatcher,
installed by ``scripts/setup.sh --dev``); processes are ended by their own ids.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

LAUNCHER = "/usr/libexec/at-spi-bus-launcher"
GENERIC = "/usr/lib/speech-dispatcher-modules/sd_generic"


def missing_programs(*names: str) -> list[str]:
    out = [n for n in names if not (shutil.which(n) or Path(n).exists())]
    return out


@dataclass
class Procs:
    started: list[subprocess.Popen] = field(default_factory=list)

    def start(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # its own session: only what it started
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self.started.clear()


def wait_for(check, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def start_session_bus(procs: Procs, work: Path, accessibility: bool) -> dict[str, str]:
    """A private session bus (and its AT-SPI bus if asked); returns the environment to use it."""
    env = {**os.environ, "XDG_RUNTIME_DIR": str(work), "HOME": str(work)}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    address_file = work / "bus-address"
    with open(address_file, "wb") as out:
        proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"], env=env,
                                stdout=out, stderr=subprocess.DEVNULL, start_new_session=True)
    procs.started.append(proc)
    wait_for(lambda: address_file.read_text().strip(), 10, "dbus-daemon printing its address")
    env["DBUS_SESSION_BUS_ADDRESS"] = address_file.read_text().strip()
    if accessibility:
        procs.start([LAUNCHER, "--launch-immediately"], env, work / "at-spi.log")
        wait_for(lambda: _has_owner(env, "org.a11y.Bus"), 10, "the AT-SPI bus launcher")
    return env


def _bus(env: dict[str, str]):  # noqa: ANN202
    from jeepney.io.blocking import open_dbus_connection

    return open_dbus_connection(bus=env["DBUS_SESSION_BUS_ADDRESS"])


def _has_owner(env: dict[str, str], name: str) -> bool:
    from jeepney import DBusAddress, new_method_call

    with _bus(env) as conn:
        msg = new_method_call(DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                                          interface="org.freedesktop.DBus"), "NameHasOwner", "s", (name,))
        return bool(conn.send_and_get_reply(msg, timeout=2).body[0])


def set_screen_reader_flag(env: dict[str, str], on: bool) -> None:
    """What GNOME's "Screen Reader" switch sets (org.a11y.Status.ScreenReaderEnabled)."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.wrappers import unwrap_msg

    with _bus(env) as conn:
        msg = new_method_call(DBusAddress("/org/a11y/bus", bus_name="org.a11y.Bus",
                                          interface="org.freedesktop.DBus.Properties"), "Set", "ssv",
                              ("org.a11y.Status", "ScreenReaderEnabled", ("b", on)))
        unwrap_msg(conn.send_and_get_reply(msg, timeout=2))


def start_speech_dispatcher(procs: Procs, work: Path, env: dict[str, str], seconds_per_text: float = 0.4) -> Path:
    """PulseAudio with a null sink (speech-dispatcher refuses to start without audio), then the
    server with one generic module that appends each text to ``spoken.txt`` and then takes
    ``seconds_per_text`` (so that a cancel can be seen cutting a queue). Sets SPEECHD_ADDRESS."""
    conf = work / "speechd"
    (conf / "modules").mkdir(parents=True, exist_ok=True)
    spoken = work / "spoken.txt"
    spoken.touch()
    (conf / "speechd.conf").write_text(
        'AddModule "capture" "sd_generic" "capture.conf"\nDefaultModule capture\n'
        'LanguageDefaultModule "en" "capture"\nDefaultLanguage "en"\nLogLevel 3\n')
    (conf / "modules" / "capture.conf").write_text(
        f"GenericExecuteSynth \"printf '%s\\\\n' \\'$DATA\\' >> {spoken}; sleep {seconds_per_text}\"\n"
        'AddVoice "en" "MALE1" "default"\nGenericLanguage "en" "en" "utf-8"\n')
    pulse = work / "pulse.sock"
    procs.start(["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disable-shm=yes",
                 "-L", "module-null-sink", "-L", f"module-native-protocol-unix socket={pulse} auth-anonymous=1"],
                env, work / "pulse.log")
    wait_for(pulse.exists, 15, "PulseAudio's socket")
    env["PULSE_SERVER"] = f"unix:{pulse}"
    sock = work / "speechd.sock"
    (work / "speechd-log").mkdir(exist_ok=True)
    procs.start(["speech-dispatcher", "-s", "-t", "0", "-C", str(conf), "-c", "unix_socket", "-S", str(sock),
                 "-L", str(work / "speechd-log")], env, work / "speechd.log")
    wait_for(sock.exists, 15, "Speech Dispatcher's socket")
    env["SPEECHD_ADDRESS"] = f"unix_socket:{sock}"
    return spoken


def spoken_lines(spoken: Path) -> list[str]:
    return [line for line in spoken.read_text().splitlines() if line.strip()]
