"""``lumen`` / ``python -m desktop``: arguments, logging, excepthook, single instance, QApplication.

``lumen models ...`` goes to ``engine.store.model_cli.main`` and ``lumen --check`` to
``desktop.check.main`` (both torch-free, no window).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import logging.handlers
import multiprocessing
import re
import sys
import time
from pathlib import Path

log = logging.getLogger("desktop")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lumen", description="Lumen: describes your screen or a photo, offline.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="models:\n"
               "  lumen models list                  the models, which one Lumen uses, what fits this computer\n"
               "  lumen models download vicuna0-7b   download and set up MiniGPT-4 (also: import, verify, remove,\n"
               "                                     quantize; see lumen models --help)\n"
               "  lumen --check                      is this computer ready? (--engine: a real test answer)")
    parser.add_argument("--check", action="store_true", help="check this computer and the model setup, then exit")
    parser.add_argument("--settings", type=Path, help="settings file to use (default: the platform config folder)")
    parser.add_argument("--engine-in-process", action="store_true",
                        help="developers: run the engine in a thread of this process instead of its own process")
    parser.add_argument("--no-hotkeys", action="store_true", help="do not register global hotkeys")
    parser.add_argument("--show", action="store_true",
                        help="if Lumen is already running, bring its window forward (the desktop menu entry does)")
    parser.add_argument("--debug", action="store_true",
                        help="debug logging (this includes answers and questions: use only to report a problem)")
    return parser.parse_known_args(argv)[0]


class RateLimit(logging.Filter):
    """At most ``burst`` records of one kind (logger, level, message with its numbers masked) per
    ``window`` seconds reach the handler; when that kind recurs after the window, one line says how
    many were dropped. A fault that repeats a message in a loop (Qt's "Invalid socket N ...
    disabling...", 7.2 GB in 90 s) then costs a few lines a minute, not the disk."""

    def __init__(self, handler: logging.Handler, burst: int = 20, window: float = 60.0) -> None:
        super().__init__()
        self._handler, self.burst, self.window = handler, burst, window
        self._kinds: dict[tuple[str, int, str], list[float]] = {}  # kind -> [window start, count]

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, re.sub(r"\d+", "#", str(record.msg))[:300])
        now = time.monotonic()
        seen = self._kinds.get(kind)
        if seen is None or now - seen[0] >= self.window:
            if seen is not None and seen[1] > self.burst:
                self._handler.emit(logging.makeLogRecord({  # emit: past the filters, no recursion
                    "name": record.name, "levelno": logging.WARNING, "levelname": "WARNING",
                    "msg": "%d more messages like %r were not logged", "args": (int(seen[1] - self.burst), kind[2])}))
            if len(self._kinds) > 1000:
                self._kinds.clear()
            seen = self._kinds[kind] = [now, 0]
        seen[1] += 1
        return seen[1] <= self.burst


def _qt_message(mode, context, message: str) -> None:  # noqa: ANN001
    """Qt's own warnings go through our (rate-limited) logging instead of straight to stderr."""
    from PySide6.QtCore import QtMsgType

    level = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
             QtMsgType.QtWarningMsg: logging.WARNING}.get(mode, logging.ERROR)
    logging.getLogger("qt").log(level, "%s", message)


def setup_logging(debug: bool) -> Path | None:
    """Log to a rotating file in the platform log folder and to stderr, both rate-limited, Qt's
    messages included. Content (answers) only at DEBUG."""
    from platformdirs import user_log_dir
    from PySide6.QtCore import qInstallMessageHandler

    level = logging.DEBUG if debug else logging.INFO
    root = logging.getLogger()
    root.setLevel(level)
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.DEBUG if debug else logging.WARNING)
    stderr.addFilter(RateLimit(stderr))
    root.addHandler(stderr)
    qInstallMessageHandler(_qt_message)
    try:
        folder = Path(user_log_dir("Lumen", appauthor=False))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "lumen.log"
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RateLimit(handler))
        root.addHandler(handler)
        return path
    except OSError as exc:
        log.warning("no log file: %s", exc)
        return None


def install_excepthook(notify) -> None:  # noqa: ANN001 - AssistantController.notify
    """An unexpected error in any thread is logged and told to the user (``notify`` is thread-safe)."""
    import threading

    from desktop import messages

    def excepthook(kind, value, tb) -> None:  # noqa: ANN001
        log.critical("unexpected error", exc_info=(kind, value, tb))
        notify(messages.error_text(messages.ErrorKind.INTERNAL))

    sys.excepthook = excepthook
    threading.excepthook = lambda args: excepthook(args.exc_type, args.exc_value, args.exc_traceback)


INSTANCE_TIMEOUT_S = 5.0  # a first copy still starting up needs a moment before it listens


def claim_instance() -> tuple[object | None, str]:
    """(lock, socket name): the lock when this is the only Lumen of this user, else None.

    The lock and socket live in the user's private runtime folder (XDG_RUNTIME_DIR on Linux), not a
    shared tmp: a lock left by a crash names a dead process and is taken over, and a stale socket
    is removed before listening.
    """
    from PySide6.QtCore import QLockFile, QStandardPaths

    folder = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.RuntimeLocation)
                  or QStandardPaths.writableLocation(QStandardPaths.StandardLocation.TempLocation))
    folder.mkdir(parents=True, exist_ok=True)
    name = f"lumen-{getpass.getuser()}" if sys.platform == "win32" else str(folder / "lumen.socket")
    lock = QLockFile(str(folder / "lumen.lock"))
    lock.setStaleLockTime(0)  # only a dead owner makes it stale, never its age
    return (lock if lock.tryLock(0) else None), name


def tell_running(name: str, show: bool) -> int:
    """The second copy: tell the running one (it says so aloud, and comes forward only with
    ``--show``), print the same, exit."""
    import time

    from PySide6.QtNetwork import QLocalSocket

    from desktop import messages

    deadline = time.monotonic() + INSTANCE_TIMEOUT_S
    while True:
        socket = QLocalSocket()
        socket.connectToServer(name)
        if socket.waitForConnected(300):
            socket.write(b"show\n" if show else b"started\n")
            socket.waitForBytesWritten(1000)
            socket.disconnectFromServer()
            break
        if time.monotonic() > deadline:
            log.warning("the running Lumen did not answer on %s", name)
            break
        time.sleep(0.2)
    print(messages.tr(messages.ALREADY_RUNNING), file=sys.stderr)
    return 0


def listen(name: str, lumen) -> object:  # noqa: ANN001 - a LumenApp
    """The running copy: a later start says "Lumen is already running" here; with --show it also
    brings the window forward (the user asked for it; nothing else takes the focus)."""
    from PySide6.QtNetwork import QLocalServer

    from desktop import messages
    from desktop.speech_output.speaker import Priority

    QLocalServer.removeServer(name)  # a stale socket from a crashed instance (we hold the lock)
    server = QLocalServer()
    server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
    if not server.listen(name):
        log.warning("single-instance socket unavailable: %s", server.errorString())

    def on_message(conn) -> None:  # noqa: ANN001
        while conn.canReadLine():
            if bytes(conn.readLine()).strip() == b"show":
                lumen.window.show()
                lumen.window.raise_()
                lumen.window.activateWindow()
            lumen.controller.notify(messages.tr(messages.ALREADY_RUNNING), Priority.NOW)

    def on_connection() -> None:
        conn = server.nextPendingConnection()
        conn.readyRead.connect(lambda: on_message(conn))
        conn.disconnected.connect(conn.deleteLater)

    server.newConnection.connect(on_connection)
    return server


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()  # frozen installers start the engine through this executable
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["models"]:
        from engine.store.model_cli import main as models_main

        return int(models_main(argv[1:]) or 0)
    if "--check" in argv:
        from desktop import check

        return int(check.main([a for a in argv if a != "--check"]) or 0)
    args = parse_args(argv)
    setup_logging(args.debug)

    from PySide6.QtWidgets import QApplication

    qt_app = QApplication.instance() or QApplication(sys.argv[:1])
    qt_app.setApplicationName("Lumen")
    qt_app.setApplicationDisplayName("Lumen")
    qt_app.setQuitOnLastWindowClosed(False)  # quit from the menu or tray; the window may only be hidden
    lock, instance_name = claim_instance()
    if lock is None:
        return tell_running(instance_name, args.show)

    from desktop import app as lumen_app

    launcher = None
    if args.engine_in_process:
        from desktop.engine_client import thread_launcher
        from engine.worker import serve

        launcher = thread_launcher(serve)
    lumen = lumen_app.build(args.settings, launcher=launcher)
    server = listen(instance_name, lumen)  # noqa: F841 - kept alive by this frame, like the lock

    install_excepthook(lumen.controller.notify)
    qt_app.aboutToQuit.connect(lumen.shutdown)
    lumen_app.start(lumen, hotkeys=not args.no_hotkeys)
    try:
        return qt_app.exec()
    finally:
        lock.unlock()


if __name__ == "__main__":
    sys.exit(main())
