"""Training test fixtures: the official tiny checkpoints converted into engine model directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def manifest(reference_dir: Path) -> dict:
    return json.loads((reference_dir / "manifest.json").read_text())


def _convert(reference_dir: Path, out: Path, qformer: bool) -> Path:
    from engine.checkpoints import convert_official
    from engine.config import tiny

    ck = reference_dir / "checkpoints"
    convert_official(
        out, config=tiny(qformer=qformer), eva_vit=ck / "eva_vit_g.pth", llm_dir=ck / "vicuna-tiny",
        projection=ck / ("pretrained_minigpt4_tiny.pth" if qformer else "pretrained_minigpt4_llama2_tiny.pth"),
        blip2=ck / "blip2_pretrained_flant5xxl.pth" if qformer else None,
    )
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _convert(reference_dir, tmp_path_factory.mktemp("models") / "main", qformer=True)


@pytest.fixture(scope="session")
def tiny_noqformer_dir(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _convert(reference_dir, tmp_path_factory.mktemp("models") / "noqformer", qformer=False)
