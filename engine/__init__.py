"""Lumen's MiniGPT-4 engine.

Importing this package must stay cheap: no torch, no CUDA probing. Heavy modules
(``engine.modeling_minigpt4``, ``engine.loading``, ``engine.describer``) are imported explicitly by
the code that needs them.
"""

from engine.protocol import ErrorKind, GenerationSettings, ImageInput, Quantization, Turn

__all__ = ["ErrorKind", "GenerationSettings", "ImageInput", "Quantization", "Turn"]
