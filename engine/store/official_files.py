"""Find MiniGPT-4's official files in a folder the user picked (torch-free; names and config.json
only; the converter checks tensor names and shapes).

What is looked for (docs/minigpt4-reference.md 12.1): ``eva_vit_g.pth``, ``blip2_pretrained_flant5xxl.pth``
(Q-Former flavours only), a projection checkpoint (``pretrained_minigpt4.pth``,
``prerained_minigpt4_7b.pth`` [sic], ``pretrained_minigpt4_llama2_7b.pth`` or another
``*minigpt4*.pth``) and a Hugging Face LLaMA directory (``config.json`` with ``model_type: llama``,
``tokenizer.model`` and weight files).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from engine.store.catalogue import CATALOGUE, ModelSpec, get_model

log = logging.getLogger(__name__)
EVA_NAME = "eva_vit_g.pth"
QFORMER_NAME = "blip2_pretrained_flant5xxl.pth"
MAX_DEPTH = 4
_SKIP_DIRS = {".git", "__pycache__", "node_modules", ".cache"}


@dataclass(frozen=True)
class OfficialFiles:
    eva: Path | None
    qformer: Path | None
    projection: Path | None
    llm_dir: Path | None
    model_id: str | None  # which catalogue model these files are for (guessed from config.json)

    def missing(self, spec: ModelSpec) -> tuple[str, ...]:
        """Keys of the missing pieces: "eva", "qformer", "projection", "llm"."""
        out = []
        if self.eva is None:
            out.append("eva")
        if spec.has_qformer and self.qformer is None:
            out.append("qformer")
        if self.projection is None:
            out.append("projection")
        if self.llm_dir is None:
            out.append("llm")
        return tuple(out)


def llm_flavour(config: dict) -> str | None:
    """The catalogue model an HF LLaMA config belongs to (full-size models only)."""
    hidden = config.get("hidden_size")
    if hidden == 5120:
        return "vicuna0-13b"
    if hidden == 4096:
        llama2 = config.get("max_position_embeddings") == 4096 or config.get("rms_norm_eps") == 1e-5
        return "llama2-7b" if llama2 else "vicuna0-7b"
    return None


def _llm_config(directory: Path) -> dict | None:
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("model_type") != "llama":
        return None
    if not (directory / "tokenizer.model").is_file():
        return None
    if not any(p.suffix in (".bin", ".safetensors") for p in directory.iterdir()):
        return None
    return config


def _is_projection(name: str) -> bool:
    return name.endswith(".pth") and "minigpt4" in name.lower() and name not in (EVA_NAME, QFORMER_NAME)


def find_official_files(folder: Path, model_id: str | None = None) -> OfficialFiles:
    """Walk ``folder`` (at most MAX_DEPTH levels) and pick one file of each kind.

    ``model_id`` chooses between several projections / LLM directories; without it the model is
    guessed from the LLM's config.json."""
    eva = qformer = None
    projections: list[Path] = []
    llms: list[tuple[Path, dict]] = []
    folder = Path(folder)
    if not folder.is_dir():
        return OfficialFiles(None, None, None, None, model_id)
    base_depth = len(folder.parts)
    for current, dirs, files in os.walk(folder, onerror=lambda e: log.warning("cannot read %s", e.filename)):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and len(here.parts) - base_depth < MAX_DEPTH)
        if "config.json" in files:
            config = _llm_config(here)
            if config is not None:
                llms.append((here, config))
        for name in sorted(files):
            if name == EVA_NAME and eva is None:
                eva = here / name
            elif name == QFORMER_NAME and qformer is None:
                qformer = here / name
            elif _is_projection(name):
                projections.append(here / name)
    if model_id is None and llms:
        model_id = llm_flavour(llms[0][1])
    llm_dir = _pick_llm(llms, model_id)
    projection = _pick_projection(projections, model_id)
    return OfficialFiles(eva, qformer, projection, llm_dir, model_id)


def _pick_llm(llms: list[tuple[Path, dict]], model_id: str | None) -> Path | None:
    for path, config in llms:
        if model_id is not None and llm_flavour(config) == model_id:
            return path
    return llms[0][0] if llms else None  # tiny or unknown sizes: the converter checks the shapes


def _pick_projection(projections: list[Path], model_id: str | None) -> Path | None:
    if model_id is not None and model_id in {s.model_id for s in CATALOGUE}:
        names = get_model(model_id).projection_names
        for path in projections:
            if path.name in names:
                return path
        others = {n for s in CATALOGUE if s.model_id != model_id for n in s.projection_names}
        projections = [p for p in projections if p.name not in others]
    return projections[0] if projections else None
