"""Qt objects are touched only from their own thread, and no fault can fill the disk with log lines."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from desktop import messages
from desktop.__main__ import RateLimit, install_excepthook
from tests.desktop.conftest import make_rig
from tests.fakes import ScriptedEngine

ROOT = Path(__file__).resolve().parents[2]


def test_an_error_in_another_thread_is_told_from_the_gui_thread(qtbot, monkeypatch) -> None:  # noqa: ANN001
    """The excepthook told the user from whatever thread failed: the speaker's player and the
    screen reader's bus connection were touched from there (Qt's socket notifiers then spun)."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    rig = make_rig(ScriptedEngine())
    threads: list[str] = []
    say = rig.speaker.say

    def recording_say(text, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        threads.append(threading.current_thread().name)
        say(text, *args, **kwargs)

    rig.speaker.say = recording_say
    try:
        install_excepthook(rig.controller.notify)
        failing = threading.Thread(target=lambda: 1 / 0, name="worker")
        failing.start()
        failing.join()
        qtbot.waitUntil(lambda: bool(rig.speaker.texts), timeout=5000)
        assert rig.speaker.texts == [messages.error_text(messages.ErrorKind.INTERNAL)]
        assert threads == ["MainThread"]
        notifier = threading.Thread(target=lambda: rig.controller.notify("From a thread"), name="other")
        notifier.start()
        notifier.join()
        qtbot.waitUntil(lambda: len(rig.speaker.texts) == 2, timeout=5000)
        assert threads == ["MainThread", "MainThread"]
    finally:
        rig.client.shutdown()


def test_a_repeated_message_is_logged_a_few_times_then_counted() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RateLimit(handler, burst=3, window=0.3))
    logger = logging.getLogger("lumen-test-ratelimit")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for i in range(1000):
            logger.warning("Invalid socket %d and type 'Read', disabling...", 5 + i % 2)
        logger.warning("another message")
        time.sleep(0.35)
        logger.warning("Invalid socket %d and type 'Read', disabling...", 5)
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["Invalid socket 5 and type 'Read', disabling...",
                         "Invalid socket 6 and type 'Read', disabling...",
                         "Invalid socket 5 and type 'Read', disabling..."]
    assert lines[3:] == ["another message",
                         "997 more messages like \"Invalid socket %d and type 'Read', disabling...\" were not logged",
                         "Invalid socket 5 and type 'Read', disabling..."]


_FLOOD = textwrap.dedent("""
    import os, socket
    from desktop.__main__ import setup_logging
    path = setup_logging(False)
    from PySide6.QtCore import QCoreApplication, QSocketNotifier, QTimer
    app = QCoreApplication([])
    a, b = socket.socketpair()
    notifier = QSocketNotifier(a.fileno(), QSocketNotifier.Type.Read)
    os.close(a.detach())  # closed under its notifier, which is then enabled again and again
    spin = QTimer(interval=0, timeout=lambda: notifier.setEnabled(True))
    spin.start()
    QTimer.singleShot(2000, app.quit)
    app.exec()
    print(path)
""")


def test_a_qt_warning_flood_stays_a_few_lines_on_stderr_and_in_the_log(tmp_path) -> None:
    """Qt's "Invalid socket N ... disabling..." for a closed socket whose notifier is re-enabled:
    12 MB of stderr in 3 s before (7.2 GB in 90 s in the field); a few lines now, the same in the log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    run = subprocess.run([sys.executable, "-c", _FLOOD], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Invalid socket" in run.stderr and len(run.stderr) < 5000, len(run.stderr)
    log_file = Path(run.stdout.strip())
    assert log_file.is_relative_to(tmp_path) and 0 < log_file.stat().st_size < 5000
