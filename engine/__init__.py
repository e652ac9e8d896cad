"""Lumen's MiniGPT-4 engine.

Importing this package must stay cheap: no torch, no CUDA probing. Heavy modules
(``engine.minigpt4.modeling``, ``engine.minigpt4.loading``, ``engine.minigpt4.describer``) are imported explicitly by
the code that needs them.

ONNX Runtime (OCR, the speech recogniser's voice detector) records a device id and telemetry under
~/.cache/Microsoft and looks up its telemetry host unless ``ORT_DISABLE_TELEMETRY`` is set before
it is imported (``onnxruntime.disable_telemetry_events()`` does not stop it). Every engine module
is imported after this package, so it is set here, for this process and the ones it starts.
"""

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from engine.protocol import ErrorKind, GenerationSettings, ImageInput, Quantization, Turn  # noqa: E402

__all__ = ["ErrorKind", "GenerationSettings", "ImageInput", "Quantization", "Turn"]
