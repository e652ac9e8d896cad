"""Lumen's MiniGPT-4 engine, laid out by where the code runs:

* ``engine.protocol``, ``engine.worker``, ``engine.image_io``: the process contract (messages, the
  request loop and its launchers, reading pictures as the model sees them);
* ``engine.minigpt4``: the model, the torch side, imported only in the engine process and the CLI;
* ``engine.perception``: OCR, its reading order, speech recognition;
* ``engine.store``: the torch-free setup side (catalogue, stores, downloads, conversion, hardware).

The desktop may import ``engine.protocol``, ``engine.image_io``, ``engine.store.*``, the worker's
launchers and perception's pure helpers, never ``engine.minigpt4`` (tests/test_architecture.py
holds the exact list and checks it from the import graph). Importing this package must stay cheap:
no torch, no CUDA probing.

ONNX Runtime (OCR, the speech recogniser's voice detector) records a device id and telemetry under
~/.cache/Microsoft and looks up its telemetry host unless ``ORT_DISABLE_TELEMETRY`` is set before
it is imported (``onnxruntime.disable_telemetry_events()`` does not stop it). Every engine module
is imported after this package, so it is set here, for this process and the ones it starts.
"""

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from engine.protocol import ErrorKind, GenerationSettings, ImageInput, Quantization, Turn  # noqa: E402

__all__ = ["ErrorKind", "GenerationSettings", "ImageInput", "Quantization", "Turn"]
