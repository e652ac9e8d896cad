"""Linux braille without Orca's D-Bus service (Orca < 49): Lumen's text on BRLTTY's display, as a flash.

Orca shows its braille through BRLTTY's client API, BrlAPI, in "tty mode" on the X session's tty
(``enterTtyModeWithPath()``, the path from WINDOWPATH). BrlAPI lets a second client enter tty mode
on the same tty: while it holds it, the display shows that client's text; when it leaves, the
display returns to Orca's braille at BRLTTY's next refresh (Orca's next change, or a key). So each
spoken message or answer sentence is flashed: ``BrailleFlash.show`` enters tty mode, writes the
text (wrapped to the display's width: a key shows the next part), keeps it ``hold`` seconds after
the last text or until a key after its last part, then leaves tty mode.

The binding is BRLTTY's own ``brlapi`` module (Debian/Ubuntu: python3-brlapi; PyPI has none). A
virtual environment does not see the system's site-packages, so the system's compiled module is
loaded from its file when it was built for this very interpreter (its file name says so). Only a
local BrlAPI socket is used (BRLAPI_HOST ``:N``, default ``:0``): never a network connection.
All BrlAPI calls run in one worker thread (they block on a socket); a failure is logged and
drops the connection, never raising into speech: braille is extra, the speech already went out.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import logging
import os
import queue
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

SOCKETS = Path("/var/lib/BrlAPI")  # where BRLTTY (Debian, Ubuntu) puts local socket N
SYSTEM_SITE = (Path("/usr/lib/python3/dist-packages"),)  # python3-brlapi's module
FLASH_SECONDS = 5.0
KEY_POLL = 0.1
_CLOSE = object()


def _binding_file() -> Path | None:
    for folder in SYSTEM_SITE:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:  # this interpreter's ABI only
            path = folder / f"brlapi{suffix}"
            if path.is_file():
                return path
    return None


@functools.cache
def load_brlapi() -> ModuleType | None:
    """BRLTTY's ``brlapi`` module: importable, or the system's build for this interpreter, or None."""
    try:
        import brlapi

        return brlapi
    except ImportError:
        pass
    path = _binding_file()
    if path is None:
        return None
    try:
        spec = importlib.util.spec_from_file_location("brlapi", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - a module that does not load: no braille
        log.info("cannot load %s: %r", path, exc)
        return None
    sys.modules["brlapi"] = module
    return module


def local_socket() -> Path | None:
    """The BrlAPI socket BRLAPI_HOST names (``:N``, default ``:0``); None for a host that is not local."""
    host = os.environ.get("BRLAPI_HOST", "") or ":0"
    name, _, number = host.rpartition(":")
    if name or not number.isdigit():
        return None
    return SOCKETS / number


def available() -> bool:
    """BRLTTY runs with its BrlAPI socket, and the binding exists (cheap: no connection)."""
    sock = local_socket()
    has_binding = importlib.util.find_spec("brlapi") is not None or _binding_file() is not None
    return sock is not None and sock.exists() and has_binding


class BrailleFlash:
    """Lumen's text on BRLTTY's display for a moment, then the display back to its owner (Orca)."""

    def __init__(self, hold: float = FLASH_SECONDS, api: ModuleType | None = None) -> None:
        self._hold = hold
        self._api = api or load_brlapi()
        if self._api is None:
            raise RuntimeError("BRLTTY's Python binding (brlapi, python3-brlapi) is not available")
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def show(self, text: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lumen-braille", daemon=True)
            self._thread.start()
        self._queue.put(text)

    def release(self) -> None:
        """Give the display back now (Stop)."""
        if self._thread is not None:
            self._queue.put(None)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_CLOSE)
            self._thread.join(2.0)
            self._thread = None

    # ------------------------------------------------------------ the worker thread
    def _run(self) -> None:
        conn, parts, deadline = None, [], 0.0  # parts: what is still to show of the text on the display
        while True:
            try:
                item = self._queue.get(timeout=KEY_POLL if parts else None)
            except queue.Empty:
                item = ...
            try:
                if item is _CLOSE or item is None:
                    if parts:
                        conn.leaveTtyMode()  # type: ignore[union-attr]
                    parts = []
                    if item is _CLOSE:
                        if conn is not None:
                            conn.closeConnection()
                        return
                elif isinstance(item, str):
                    if conn is None:
                        sock = local_socket()
                        if sock is None:
                            raise RuntimeError("BRLAPI_HOST names no local socket: Lumen makes no network connection")
                        conn = self._api.Connection(f":{sock.name}".encode(), None)  # type: ignore[union-attr]
                    if not parts:
                        conn.enterTtyModeWithPath([])
                    width = conn.displaySize[0] * conn.displaySize[1]
                    parts = textwrap.wrap(item, width) or [""]
                    conn.writeText(parts[0])
                    deadline = time.monotonic() + self._hold
                elif parts:  # holding: a key shows the next part, or gives the display back after the last
                    if conn.readKey(False) is not None:
                        parts = parts[1:]
                        if parts:
                            conn.writeText(parts[0])
                            deadline = time.monotonic() + self._hold
                    if parts and time.monotonic() >= deadline:
                        parts = []
                    if not parts:
                        conn.leaveTtyMode()
            except Exception as exc:  # noqa: BLE001 - BRLTTY went away or refused: no braille until the next text
                log.warning("braille through BRLTTY failed: %r", exc)
                if conn is not None:
                    try:
                        conn.closeConnection()
                    except Exception:  # noqa: BLE001
                        log.debug("closing BrlAPI failed", exc_info=True)
                conn, parts = None, []
                if item is _CLOSE:
                    return
