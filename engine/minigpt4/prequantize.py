"""Optional pre-quantised copy of a model directory, so loading never quantises at start-up.

``<root>/<model_id>`` (fp16) -> ``<root>/<model_id>-nf4`` (or ``-int8``): the same visual weights,
tokenizer and description, and an ``llm/`` saved by bitsandbytes in its serialised 4-bit / 8-bit form
(transformers writes ``quantization_config`` into ``llm/config.json``, and ``from_pretrained`` reads the
quantised tensors back as they are). Runs in a spawned process (engine.store.conversion_process); imports
torch, so the desktop never imports this module itself.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
COPIED = ("lumen_model.json", "visual.safetensors", "tokenizer.model")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # same file system: no extra disk space for the 2 GB of visual weights
    except OSError:
        shutil.copyfile(src, dst)


def prequantize(*, src_dir: Path, out_dir: Path, quantization: str, device: str = "auto") -> None:
    import torch
    from transformers import LlamaForCausalLM

    from engine.minigpt4.loading import bnb_config
    from engine.protocol import Quantization

    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    llm = LlamaForCausalLM.from_pretrained(
        str(src_dir / "llm"), quantization_config=bnb_config(Quantization(quantization), dtype), dtype=dtype,
        device_map={"": device}, local_files_only=True,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    llm.save_pretrained(str(out_dir / "llm"), safe_serialization=True)
    for name in COPIED:
        _link_or_copy(src_dir / name, out_dir / name)
    log.info("pre-quantised %s -> %s (%s on %s)", src_dir, out_dir, quantization, device)
