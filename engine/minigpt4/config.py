"""MiniGPT-4 configuration: frozen dataclasses and preset functions.

Every default is written once, here. Sizes follow docs/minigpt4-reference.md sections 2-6.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class VisionConfig:
    """EVA ViT-g/14 as built by LAVIS for MiniGPT-4 (39 of EVA-CLIP-g's 40 blocks, no final norm)."""

    image_size: int = 224
    patch_size: int = 14
    hidden_size: int = 1408
    num_layers: int = 39
    num_heads: int = 16
    intermediate_size: int = 6144  # int(1408 * 4.3637)
    layer_norm_eps: float = 1e-6
    ln_vision_eps: float = 1e-5  # ln_vision is a plain torch LayerNorm, not 1e-6

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass(frozen=True)
class QFormerConfig:
    """BLIP-2's Q-Former (bert-base sized, cross-attention every 2nd layer, text parts removed)."""

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    cross_attention_freq: int = 2
    layer_norm_eps: float = 1e-12
    num_query_tokens: int = 32
    max_position_embeddings: int = 512


@dataclass(frozen=True)
class MiniGPT4Config:
    """The whole model. ``qformer=None`` is the Llama-2 flavour (4 consecutive ViT tokens grouped)."""

    name: str
    vision: VisionConfig = field(default_factory=VisionConfig)
    qformer: QFormerConfig | None = field(default_factory=QFormerConfig)
    llm: dict[str, Any] = field(default_factory=dict)  # LlamaConfig keyword arguments
    template: str = "vicuna0"  # engine.minigpt4.prompts.TEMPLATES key
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    tokens_per_group: int = 4  # only without Q-Former: ViT tokens concatenated per LLM token

    @property
    def llm_hidden_size(self) -> int:
        return int(self.llm["hidden_size"])

    @property
    def projection_in_features(self) -> int:
        if self.qformer is not None:
            return self.qformer.hidden_size
        return self.vision.hidden_size * self.tokens_per_group

    @property
    def num_image_tokens(self) -> int:
        if self.qformer is not None:
            return self.qformer.num_query_tokens
        return self.vision.num_patches // self.tokens_per_group

    def with_llm(self, llm: dict[str, Any]) -> MiniGPT4Config:
        """The same model with another LLM configuration (e.g. read from an LLM folder)."""
        return dataclasses.replace(self, llm=llm)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MiniGPT4Config:
        """From parsed JSON; any value that could not build a working model is a ``ValueError``."""
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown MiniGPT-4 config fields: {sorted(unknown)}")
        data["vision"] = _checked(VisionConfig, data.get("vision", {}))
        qf = data.get("qformer", {})
        data["qformer"] = None if qf is None else _checked(QFormerConfig, qf)
        for key in ("image_mean", "image_std"):
            if key in data:
                data[key] = tuple(data[key])
                if len(data[key]) != 3 or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                                  for v in data[key]):
                    raise ValueError(f"{key} must be three numbers")
        if data["vision"].image_size < data["vision"].patch_size:
            raise ValueError("vision.image_size is smaller than vision.patch_size")
        if "tokens_per_group" in data:
            _positive("tokens_per_group", data["tokens_per_group"], int)
        return cls(**data)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> MiniGPT4Config:
        return cls.from_dict(json.loads(path.read_text()))


def _positive(name: str, value: object, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, int if kind is int else int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive {'whole ' if kind is int else ''}number, found {value!r}")


def _checked(cls: type, values: object) -> Any:
    """A VisionConfig / QFormerConfig from JSON, every size a positive whole number (every eps positive),
    every hidden size a multiple of its number of heads."""
    if not isinstance(values, dict):
        raise ValueError(f"{cls.__name__} must be an object")
    section = cls(**values)
    for f in dataclasses.fields(cls):
        _positive(f.name, getattr(section, f.name), float if "eps" in f.name else int)
    if section.hidden_size % section.num_heads:
        raise ValueError(f"{cls.__name__}.hidden_size is not a multiple of num_heads")
    return section


def _llama(hidden: int, layers: int, heads: int, mlp: int, eps: float, context: int) -> dict[str, Any]:
    return {
        "vocab_size": 32000,
        "hidden_size": hidden,
        "intermediate_size": mlp,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "rms_norm_eps": eps,
        "max_position_embeddings": context,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "hidden_act": "silu",
    }


def vicuna0_7b() -> MiniGPT4Config:
    return MiniGPT4Config(name="minigpt4-vicuna0-7b", llm=_llama(4096, 32, 32, 11008, 1e-6, 2048))


def vicuna0_13b() -> MiniGPT4Config:
    return MiniGPT4Config(name="minigpt4-vicuna0-13b", llm=_llama(5120, 40, 40, 13824, 1e-6, 2048))


def llama2_7b() -> MiniGPT4Config:
    return MiniGPT4Config(
        name="minigpt4-llama2-7b", qformer=None, template="llama2",
        llm=_llama(4096, 32, 32, 11008, 1e-5, 4096),
    )


def tiny(*, qformer: bool = True, vocab_size: int = 800) -> MiniGPT4Config:
    """The parity fixtures' sizes (shared/fixtures/reference/config.json): fast enough for unit tests."""
    llm = _llama(64, 2, 4, 172, 1e-6, 2048)
    llm["vocab_size"] = vocab_size
    return MiniGPT4Config(
        name="minigpt4-tiny" if qformer else "minigpt4-tiny-noqformer",
        vision=VisionConfig(image_size=56, patch_size=14, hidden_size=64, num_layers=2, num_heads=4,
                            intermediate_size=279),
        qformer=QFormerConfig(hidden_size=48, num_layers=4, num_heads=4, intermediate_size=192,
                              num_query_tokens=8, max_position_embeddings=64) if qformer else None,
        llm=llm,
        template="vicuna0" if qformer else "llama2",
    )


PRESETS = {
    "vicuna0-7b": vicuna0_7b,
    "vicuna0-13b": vicuna0_13b,
    "llama2-7b": llama2_7b,
    "tiny": tiny,
    "tiny-noqformer": lambda: tiny(qformer=False),
}
