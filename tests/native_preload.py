"""Load the native OCR and speech libraries when a test module imports this (at collection).

Loading them later in the run, while a QtMultimedia player that an earlier test left playing
still exists, segfaults in QTimerInfoList::activateTimers (seen after tests/desktop/test_speech.py
test_sentences_play_in_order_and_now_interrupts, which ends mid-utterance; any dlopen of a C++
library then, even ctypes.CDLL, crashes). The app is not exposed: these libraries load in the
engine process and QtMultimedia in the desktop process.
"""

from __future__ import annotations

import contextlib
import importlib

for name in ("faster_whisper", "rapidocr", "onnxruntime"):
    with contextlib.suppress(ImportError):
        importlib.import_module(name)
