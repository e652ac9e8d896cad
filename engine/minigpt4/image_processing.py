"""The official eval image transform (``Blip2ImageEvalProcessor``): PIL bicubic resize to a square
(no crop, aspect ratio not preserved), ToTensor, CLIP mean/std normalisation. docs/minigpt4-reference.md section 10."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from engine.minigpt4.config import CLIP_MEAN, CLIP_STD
from engine.image_io import model_input_image


def preprocess(images: Sequence[Image.Image], size: int = 224,
               mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """RGB PIL images -> float32 tensor (B, 3, size, size)."""
    arrays = []
    for image in images:
        resized = model_input_image(image, size)
        arrays.append(np.asarray(resized, dtype=np.float32) / 255.0)
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((pixels - mean_t) / std_t).contiguous()
