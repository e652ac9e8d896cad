"""One real engine session, for tests/test_offline_native.py to watch from outside the process.

``python -m tests.offline_session MODEL_DIR WAV``: starts the engine process as the app does
(``engine.worker.spawn_worker``), loads the model, describes a picture (generation), reads its text
(OCR: ONNX Runtime) and transcribes a recording (speech recognition: CTranslate2 and ONNX Runtime),
then stops it. Prints one line per answer; exits non-zero if any request failed (TimeoutError: one never came).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from engine.protocol import (Describe, Finished, GenerationSettings, ImageInput, LoadModel, ModelReady,
                             ReadText, TextRead, Transcribe, Transcribed)
from engine.worker import spawn_worker


def picture() -> bytes:
    image = Image.new("RGB", (320, 120), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 110, 110), fill=(30, 90, 200))
    draw.text((140, 50), "Invoice 2041", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def main(model_dir: str, wav_path: str) -> int:
    worker = spawn_worker()
    image = ImageInput("img1", picture())
    requests = [
        (LoadModel(model_dir, device="cpu"), ModelReady),
        (Describe(1, "c1", "What is this?", new_image_ids=("img1",), images=(image,),
                  settings=GenerationSettings.greedy(max_new_tokens=8)), Finished),
        (ReadText(2, image), TextRead),
        (Transcribe(3, Path(wav_path).read_bytes()), Transcribed),
    ]
    try:
        for request, answer in requests:
            event = worker.request(request, 240)[-1]
            if not isinstance(event, answer):
                print(f"FAILED {type(request).__name__}: {event}", flush=True)
                return 1
            print(f"OK {type(request).__name__}", flush=True)
    finally:
        worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
