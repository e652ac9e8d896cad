"""Windows: NVDA (controller client DLL) and JAWS (FSAPI COM).

Why not through Qt: NVDA ignores UIA notifications from applications that do not have focus, and
JAWS reads none, so a hotkey pressed in Word would reach the user only as earcons.

- NVDA: ``nvdaControllerClient.dll`` (LGPL-2.1, from NVDA's controller client package) over
  ctypes: ``nvdaController_testIfRunning``, ``_speakText``, ``_brailleMessage``,
  ``_cancelSpeech``; each returns 0 on success (a Win32 error code otherwise). Looked for in
  LUMEN_NVDA_CONTROLLER, next to the Lumen executable / in desktop/resources/nvda, then NVDA's
  own folder.
- JAWS: the ``FreedomSci.JawsApi`` COM object (comtypes): ``SayString(text, flush)``,
  ``StopSpeech()``, and braille through JAWS' script function ``BrailleString``. JAWS runs when
  its window class ``JFWUI2`` exists.
- Anything else that sets ``SPI_GETSCREENREADER`` (Narrator, ZoomText...): no direct path;
  Lumen's own voice speaks, and Qt's UIA notification (``ReaderWatch.announce``) reaches such a
  reader while Lumen's window is focused.

Every native entry point goes through ``Native`` so that the tests can record the exact calls.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from pathlib import Path

from desktop.speech_output.reader import Probe, ReaderError, ScreenReader

log = logging.getLogger(__name__)

SPI_GETSCREENREADER = 0x0046
JAWS_WINDOW_CLASS = "JFWUI2"
NVDA_DLL = "nvdaControllerClient.dll"


class Native:
    """The native boundary: the NVDA DLL, user32 and the JAWS COM object (replaced in tests)."""

    _dll = None

    def nvda(self):  # noqa: ANN201 - a ctypes WinDLL, or None when no controller client is found
        """Loaded once: probe asks every few seconds."""
        if self._dll is None:
            self._dll = self._load_nvda()
        return self._dll

    def _load_nvda(self):  # noqa: ANN202
        for path in _nvda_dll_candidates():
            if path.is_file():
                try:
                    dll = ctypes.WinDLL(str(path))  # type: ignore[attr-defined]
                except OSError as exc:
                    log.info("cannot load %s: %r", path, exc)
                    continue
                for name in ("nvdaController_speakText", "nvdaController_brailleMessage"):
                    getattr(dll, name).argtypes = [ctypes.c_wchar_p]
                for name in ("nvdaController_speakText", "nvdaController_brailleMessage",
                             "nvdaController_cancelSpeech", "nvdaController_testIfRunning"):
                    getattr(dll, name).restype = ctypes.c_ulong
                return dll
        return None

    def screen_reader_flag(self) -> bool:
        flag = ctypes.c_int(0)
        ok = ctypes.windll.user32.SystemParametersInfoW(SPI_GETSCREENREADER, 0, ctypes.byref(flag), 0)  # type: ignore[attr-defined]
        return bool(ok and flag.value)

    def window_exists(self, window_class: str) -> bool:
        return bool(ctypes.windll.user32.FindWindowW(window_class, None))  # type: ignore[attr-defined]

    def jaws(self):  # noqa: ANN201 - the FreedomSci.JawsApi COM object
        import comtypes.client

        return comtypes.client.CreateObject("FreedomSci.JawsApi")


def _nvda_dll_candidates() -> list[Path]:
    out = []
    if os.environ.get("LUMEN_NVDA_CONTROLLER"):
        out.append(Path(os.environ["LUMEN_NVDA_CONTROLLER"]))
    bits = "64" if sys.maxsize > 2**32 else "32"
    here = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))
    for folder in (here, here / "resources" / "nvda", here / "desktop" / "resources" / "nvda"):
        out += [folder / f"nvdaControllerClient{bits}.dll", folder / NVDA_DLL]
    for root in (os.environ.get("ProgramFiles(x86)"), os.environ.get("ProgramFiles")):
        if root:
            out.append(Path(root) / "NVDA" / NVDA_DLL)
    return out


_NATIVE: Native | None = None


def native() -> Native:
    global _NATIVE
    if _NATIVE is None:
        _NATIVE = Native()
    return _NATIVE


def probe(n: Native | None = None) -> Probe:
    n = n or native()
    dll = n.nvda()
    if dll is not None and dll.nvdaController_testIfRunning() == 0:
        return Probe("nvda", "NVDA", braille=True)
    if n.window_exists(JAWS_WINDOW_CLASS):
        return Probe("jaws", "JAWS", braille=True)
    if n.screen_reader_flag():
        missing = "" if dll is not None else " (NVDA's controller client was not found)"
        return Probe(None, note=f"A screen reader runs that Lumen cannot address directly{missing}: Lumen's voice "
                                "speaks, and the reader also hears Lumen's messages while Lumen's window is focused.")
    return Probe(None)


def open_reader(kind: str, n: Native | None = None) -> ScreenReader:
    n = n or native()
    if kind == "nvda":
        dll = n.nvda()
        if dll is None:
            raise ReaderError("NVDA's controller client is missing")
        return Nvda(dll)
    if kind == "jaws":
        return Jaws(n.jaws())
    raise ReaderError(f"unknown reader {kind!r}")


class Nvda(ScreenReader):
    name = "NVDA"
    supports_braille = True

    def __init__(self, dll) -> None:  # noqa: ANN001
        self._dll = dll

    def _check(self, what: str, code: int) -> None:
        if code != 0:
            raise ReaderError(f"NVDA {what} failed with error {code}")

    def speak(self, text: str, interrupt: bool = False) -> None:
        if interrupt:
            self.cancel()
        self._check("speakText", self._dll.nvdaController_speakText(text))

    def braille(self, text: str) -> None:
        self._check("brailleMessage", self._dll.nvdaController_brailleMessage(text))

    def cancel(self) -> None:
        self._check("cancelSpeech", self._dll.nvdaController_cancelSpeech())


class Jaws(ScreenReader):
    name = "JAWS"
    supports_braille = True

    def __init__(self, api) -> None:  # noqa: ANN001
        self._api = api

    def _run(self, what: str, call) -> object:  # noqa: ANN001
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - a COM error: JAWS quit or refused
            raise ReaderError(f"JAWS {what}: {exc!r}") from exc

    def speak(self, text: str, interrupt: bool = False) -> None:
        if not self._run("SayString", lambda: self._api.SayString(text, bool(interrupt))):
            raise ReaderError("JAWS did not say the text")

    def braille(self, text: str) -> None:
        quoted = text.replace('"', "'").replace("\r", " ").replace("\n", " ")  # a JAWS script string literal
        self._run("BrailleString", lambda: self._api.RunFunction(f'BrailleString("{quoted}")'))

    def cancel(self) -> None:
        self._run("StopSpeech", self._api.StopSpeech)
