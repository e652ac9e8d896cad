"""Entry point of the frozen app (PyInstaller). The engine runs in a process spawned from this same
executable: ``multiprocessing.freeze_support()`` must run first, so that a spawned child runs the
engine loop instead of starting a second app.

``lumen --bundle-self-test`` imports every optional part the bundle is meant to carry and exits
non-zero naming what is missing, so the build scripts fail instead of the user (push-to-talk
without PortAudio, 4-bit without accelerate, hotkeys without python-xlib...), and says which bundled
files it found (NVDA's controller client on Windows)."""

import importlib
import multiprocessing
import os
import sys

# No ONNX Runtime telemetry (see engine/__init__.py): the self-test below imports it before the engine.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

BUNDLED = {  # module -> what a user would lose without it
    "PySide6.QtMultimedia": "the own voice's playback and the earcons",
    "rapidocr": "reading the screen's text", "onnxruntime": "reading the screen's text",
    "psutil": "memory checks", "torch": "the engine", "transformers": "the engine",
}
VOICE = {"faster_whisper": "spoken questions", "ctranslate2": "spoken questions",
         "sounddevice": "push-to-talk (PortAudio)"}
PLATFORM = {"linux": {"Xlib": "X11 hotkeys", "jeepney": "Wayland portals and the focused control",
                      "pyttsx3.drivers._espeak": "the own voice (espeak-ng)"},
            "win32": {"comtypes": "the focused control (UI Automation) and speech through JAWS"},
            "darwin": {"Quartz": "screen capture", "AppKit": "the active window",
                       "ScreenCaptureKit": "screen capture on macOS 14 and later",
                       "ApplicationServices": "the Accessibility permission prompt",
                       "AVFoundation": "the own voice (AVSpeechSynthesizer)"}}
GPU = {"accelerate": "4-bit and 8-bit precision", "bitsandbytes": "4-bit and 8-bit precision"}
FILES = {  # platform -> {file inside the bundle (relative to sys._MEIPASS): what a user would lose without it}
    "win32": {"resources/nvda/nvdaControllerClient.dll": "speech and braille through NVDA",
              "resources/nvda/license.txt": "the NVDA controller client's licence (LGPL-2.1), which must ship with it"},
}


def bundled_files(platform: str, base: str) -> tuple[list[str], list[str]]:
    """(present, missing): the files ``platform``'s bundle must carry, looked for in the bundle at ``base``."""
    present, missing = [], []
    for name, feature in FILES.get(platform, {}).items():
        if os.path.isfile(os.path.join(base, name)):
            present.append(name)
        else:
            missing.append(f"{name} ({feature})")
    return present, missing


def self_test() -> int:
    wanted = {**BUNDLED, **PLATFORM.get(sys.platform, {})}
    if os.environ.get("LUMEN_BUNDLE_SPEECH_INPUT", "1") == "1":
        wanted.update(VOICE)
    if os.environ.get("LUMEN_BUNDLE_GPU") == "1":
        wanted.update(GPU)
    missing = []
    for module, feature in wanted.items():
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - ImportError, or a native library that fails to load
            missing.append(f"{module} ({feature}): {exc}")
    present, absent = bundled_files(sys.platform, getattr(sys, "_MEIPASS", os.path.dirname(__file__)))
    missing += absent
    for name in present:
        print("bundled", name)
    for line in missing:
        print("MISSING", line)
    print("bundle self-test:", "FAILED" if missing else f"all {len(wanted)} parts import, {len(present)} files present")
    return 1 if missing else 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    if sys.argv[1:] == ["--bundle-self-test"]:
        sys.exit(self_test())
    from desktop.__main__ import main

    sys.exit(main())
