"""Official MiniGPT-4 checkpoints -> Lumen's self-contained model directory.

The official loader loads everything non-strictly, so a wrong file silently gives random weights
(docs/minigpt4-reference.md section 12.1). Here every source file goes through a declarative key map, then its key
set and shapes are checked against the model, and any problem raises ``CheckpointError`` naming the
file. Only safe loaders are used: safetensors, or ``torch.load(weights_only=True)``.

The model directory's layout and the reading of its small files are ``engine.store.model_folder``'s
(torch-free); ``read_model_config`` here adds the MiniGPT4Config built from them.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from engine.minigpt4.config import MiniGPT4Config
from engine.store.model_folder import (LLM_DIR, MODEL_JSON, TOKENIZER_FILE, VISUAL_FILE, CheckpointError, read_json,
                                       read_llm_config)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


# --------------------------------------------------------------------------- declarative key maps
# (pattern, replacement); replacement None = known and deliberately dropped.

EVA_RULES: list[tuple[str, str | None]] = [
    (r"^cls_token$", "vision_model.embeddings.class_embedding"),
    (r"^pos_embed$", "vision_model.embeddings.position_embedding"),
    (r"^patch_embed\.proj\.(weight|bias)$", r"vision_model.embeddings.patch_embedding.\1"),
    (r"^blocks\.(\d+)\.norm1\.(weight|bias)$", r"vision_model.encoder.layers.\1.layer_norm1.\2"),
    (r"^blocks\.(\d+)\.norm2\.(weight|bias)$", r"vision_model.encoder.layers.\1.layer_norm2.\2"),
    (r"^blocks\.(\d+)\.attn\.qkv\.weight$", r"vision_model.encoder.layers.\1.self_attn.qkv.weight"),
    (r"^blocks\.(\d+)\.attn\.proj\.(weight|bias)$", r"vision_model.encoder.layers.\1.self_attn.projection.\2"),
    (r"^blocks\.(\d+)\.mlp\.fc([12])\.(weight|bias)$", r"vision_model.encoder.layers.\1.mlp.fc\2.\3"),
    # q_bias / v_bias are combined into qkv.bias = [q_bias, 0, v_bias] by _combine_qkv_bias
    (r"^blocks\.(\d+)\.attn\.[qv]_bias$", None),
    (r"^(norm|fc_norm|head)\.", None),  # EVA-CLIP's final norm/head, unused by BLIP-2
]

BLIP2_RULES: list[tuple[str, str | None]] = [
    (r"^query_tokens$", "query_tokens"),
    (r"^ln_vision\.(weight|bias)$", r"vision_model.post_layernorm.\1"),
    (r"^Qformer\.bert\.embeddings\.LayerNorm\.(weight|bias)$", r"qformer.layernorm.\1"),
    (r"^Qformer\.bert\.encoder\.layer\.(\d+)\.(attention|crossattention)\.self\.(.*)$",
     r"qformer.encoder.layer.\1.\2.attention.\3"),
    (r"^Qformer\.bert\.encoder\.layer\.(\d+)\.(.*)$", r"qformer.encoder.layer.\1.\2"),
    (r"^Qformer\.bert\.embeddings\.position_ids$", None),
    (r"^t5_proj\.", None),  # BLIP-2's own T5 projection
    (r"^opt_proj\.", None),
]

PROJECTION_RULES: list[tuple[str, str | None]] = [
    (r"^llama_proj\.(weight|bias)$", r"language_projection.\1"),
]

# HF-format BLIP-2 (e.g. Salesforce/blip2-flan-t5-xxl): names already ours.
HF_BLIP2_RULES: list[tuple[str, str | None]] = [
    (r"^(vision_model\..*|qformer\..*|query_tokens)$", r"\1"),
    (r"^(language_model|language_projection)\.", None),
    (r"^qformer\.embeddings\.", None),
]


@dataclass
class ConversionReport:
    loaded: dict[str, list[str]] = field(default_factory=dict)  # file -> our keys it provided
    dropped: dict[str, list[str]] = field(default_factory=dict)  # file -> official keys deliberately dropped
    unexpected: dict[str, list[str]] = field(default_factory=dict)  # file -> unknown keys (ignored)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = []
        for file, keys in self.loaded.items():
            lines.append(f"{file}: {len(keys)} tensors loaded, {len(self.dropped.get(file, []))} dropped, "
                         f"{len(self.unexpected.get(file, []))} unexpected")
        return "\n".join(lines + self.notes)


# --------------------------------------------------------------------------- safe loading


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors, never unpickling arbitrary objects. Unwraps ``{'model': ...}``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file not found")
    try:
        if path.suffix == ".safetensors":
            data: object = load_file(str(path))
        else:
            data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=_can_mmap(path))
    except pickle.UnpicklingError as exc:
        raise CheckpointError(path, f"refused to load: contains objects other than tensors ({exc})") from exc
    except Exception as exc:  # zip errors, truncated files, safetensors header errors
        raise CheckpointError(path, f"not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(path, "does not hold a state dict of tensors")
    return data


def _can_mmap(path: Path) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)


def apply_rules(state: dict[str, torch.Tensor], rules: list[tuple[str, str | None]], file: str,
                report: ConversionReport) -> dict[str, torch.Tensor]:
    mapped: dict[str, torch.Tensor] = {}
    compiled = [(re.compile(p), r) for p, r in rules]
    for key, tensor in state.items():
        for pattern, replacement in compiled:
            if pattern.search(key):
                if replacement is None:
                    report.dropped.setdefault(file, []).append(key)
                else:
                    mapped[pattern.sub(replacement, key)] = tensor
                break
        else:
            report.unexpected.setdefault(file, []).append(key)
    return mapped


def _combine_qkv_bias(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    for key, q_bias in state.items():
        m = re.fullmatch(re.escape(prefix) + r"blocks\.(\d+)\.attn\.q_bias", key)
        if m:
            v_bias = state.get(f"{prefix}blocks.{m.group(1)}.attn.v_bias")
            if v_bias is None:
                continue  # reported as missing qkv.bias later
            bias = torch.cat([q_bias, torch.zeros_like(q_bias), v_bias])
            out[f"vision_model.encoder.layers.{m.group(1)}.self_attn.qkv.bias"] = bias
    return out


def map_eva(state: dict[str, torch.Tensor], config: MiniGPT4Config, file: str,
            report: ConversionReport, prefix: str = "") -> dict[str, torch.Tensor]:
    """EVA ViT keys -> ours. Blocks >= num_layers are dropped (BLIP-2 uses the second-to-last layer)."""
    depth = config.vision.num_layers
    kept, extra = {}, []
    for key, tensor in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        m = re.match(r"blocks\.(\d+)\.", name)
        if m and int(m.group(1)) >= depth:
            extra.append(key)
            continue
        kept[name] = tensor
    if extra:
        report.dropped.setdefault(file, []).extend(extra)
        report.notes.append(f"{file}: {len(extra)} tensors of ViT blocks >= {depth} ignored (as official)")
    mapped = apply_rules(kept, EVA_RULES, file, report)
    mapped.update(_combine_qkv_bias(kept))
    return mapped


# --------------------------------------------------------------------------- expected keys / checks


def expected_visual_shapes(config: MiniGPT4Config) -> dict[str, tuple[int, ...]]:
    from engine.minigpt4.modeling import MiniGPT4

    llm = dict(config.llm)
    llm.update(num_hidden_layers=1, vocab_size=8)  # the LLM is not part of visual.safetensors
    with torch.device("meta"):
        model = MiniGPT4(config.with_llm(llm))
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("language_model.")}


def check_part(mapped: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], file: str,
               prefixes: tuple[str, ...]) -> None:
    wanted = {k: s for k, s in expected.items() if k.startswith(prefixes)}
    missing = sorted(set(wanted) - set(mapped))
    wrong = [f"{k}: file {tuple(mapped[k].shape)} vs model {wanted[k]}"
             for k in sorted(set(wanted) & set(mapped)) if tuple(mapped[k].shape) != wanted[k]]
    if not set(wanted) & set(mapped):
        raise CheckpointError(file, f"none of the expected tensors ({', '.join(prefixes)}) are in this file; "
                                    "is it the right file?")
    if missing:
        raise CheckpointError(file, f"{len(missing)} tensors missing, e.g. {missing[:3]}")
    if wrong:
        raise CheckpointError(file, f"{len(wrong)} tensors have the wrong shape for this model (the file "
                                    f"belongs to a different model size or preset): {wrong[:3]}")


# --------------------------------------------------------------------------- conversion


def convert_official(out_dir: Path, *, config: MiniGPT4Config, eva_vit: Path | None, projection: Path,
                     llm_dir: Path, blip2: Path | None = None, blip2_hf: Path | None = None,
                     overwrite: bool = False) -> ConversionReport:
    """Official files (or HF BLIP-2 weights for the frozen parts) -> a model directory.

    Follows the official load order: EVA ViT, then the BLIP-2 file over the whole model (so any
    ``visual_encoder.*`` it holds overrides the EVA file), then the projection.
    """
    out_dir = Path(out_dir)
    report = ConversionReport()
    llm_config = read_llm_config(Path(llm_dir))
    config = config.with_llm(llm_config)
    expected = expected_visual_shapes(config)
    visual: dict[str, torch.Tensor] = {}

    if blip2_hf is not None:
        state = _load_hf_blip2(Path(blip2_hf))
        visual.update(apply_rules(state, HF_BLIP2_RULES, str(blip2_hf), report))
        visual = {k: v for k, v in visual.items() if not _drop_extra_hf_block(k, config, report, str(blip2_hf))}
        if config.qformer is None:
            visual = {k: v for k, v in visual.items() if k.startswith("vision_model.") and "post_layernorm" not in k}
        check_part(visual, expected, str(blip2_hf), ("vision_model.",))
    else:
        if eva_vit is None:
            raise CheckpointError("eva_vit_g.pth", "no EVA ViT checkpoint given")
        visual.update(map_eva(load_state_dict(Path(eva_vit)), config, str(eva_vit), report))
        if config.qformer is not None:
            if blip2 is None:
                raise CheckpointError("blip2_pretrained_flant5xxl.pth", "no BLIP-2 Q-Former checkpoint given")
            state = load_state_dict(Path(blip2))
            visual_keys = {k: v for k, v in state.items() if k.startswith("visual_encoder.")}
            if visual_keys:
                report.notes.append(f"{blip2}: holds visual_encoder.* which overrides the EVA file (as official)")
                visual.update(map_eva(visual_keys, config, str(blip2), report, prefix="visual_encoder."))
            rest = {k: v for k, v in state.items() if not k.startswith("visual_encoder.")}
            visual.update(apply_rules(rest, BLIP2_RULES, str(blip2), report))
            check_part(visual, expected, str(blip2), ("qformer.", "query_tokens", "vision_model.post_layernorm"))
        else:
            report.notes.append("Llama-2 flavour: no BLIP-2 file; ln_vision stays weight 1 / bias 0 (as official)")
            visual["vision_model.post_layernorm.weight"] = torch.ones(config.vision.hidden_size)
            visual["vision_model.post_layernorm.bias"] = torch.zeros(config.vision.hidden_size)
        check_part(visual, expected, str(eva_vit), ("vision_model.embeddings", "vision_model.encoder"))

    visual.update(apply_rules(load_state_dict(Path(projection)), PROJECTION_RULES, str(projection), report))
    check_part(visual, expected, str(projection), ("language_projection.",))
    for file, keys in report.unexpected.items():
        log.warning("%s: %d unexpected tensors ignored, e.g. %s", file, len(keys), keys[:3])
    visual = {k: v for k, v in visual.items() if k in expected}
    report.loaded = {"visual": sorted(visual)}

    if out_dir.exists():
        if not overwrite:
            raise CheckpointError(out_dir, "output directory already exists (use overwrite)")
        shutil.rmtree(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in visual.items()}, str(tmp / VISUAL_FILE))
    convert_llm_dir(Path(llm_dir), tmp / LLM_DIR)
    shutil.copyfile(_find_tokenizer(Path(llm_dir)), tmp / TOKENIZER_FILE)
    write_model_json(tmp, config, sources={
        "eva_vit": str(eva_vit) if eva_vit else None, "blip2": str(blip2) if blip2 else None,
        "blip2_hf": str(blip2_hf) if blip2_hf else None, "projection": str(projection), "llm_dir": str(llm_dir)})
    tmp.rename(out_dir)
    return report


def _drop_extra_hf_block(key: str, config: MiniGPT4Config, report: ConversionReport, file: str) -> bool:
    m = re.match(r"vision_model\.encoder\.layers\.(\d+)\.", key)
    if m and int(m.group(1)) >= config.vision.num_layers:
        report.dropped.setdefault(file, []).append(key)
        return True
    return False


def _load_hf_blip2(path: Path) -> dict[str, torch.Tensor]:
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    else:
        files = [path]
    if not files:
        raise CheckpointError(path, "no weight files (*.safetensors or pytorch_model*.bin) in this folder")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        part = load_state_dict(file)
        state.update({k: v for k, v in part.items() if not k.startswith("language_model.")})
    return state


def _find_tokenizer(llm_dir: Path) -> Path:
    path = llm_dir / TOKENIZER_FILE
    if not path.is_file():
        raise CheckpointError(llm_dir, "tokenizer.model (the LLaMA SentencePiece model) is missing")
    return path


def convert_llm_dir(src: Path, dst: Path) -> None:
    """Copy an HF LLaMA folder as safetensors, one shard at a time (bounded memory for 13B)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "generation_config.json"):
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    st = sorted(src.glob("*.safetensors"))
    if st:
        for file in st + sorted(src.glob("*.safetensors.index.json")):
            shutil.copyfile(file, dst / file.name)
        return
    shards = sorted(src.glob("pytorch_model*.bin"))
    if not shards:
        raise CheckpointError(src, "no weights (pytorch_model*.bin or *.safetensors) in the LLM folder")
    weight_map: dict[str, str] = {}
    total = 0
    for i, shard in enumerate(shards, start=1):
        state = load_state_dict(shard)
        state = {k: v.contiguous() for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(state, str(dst / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(state, name))
        total += sum(v.numel() * v.element_size() for v in state.values())
        del state
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def write_model_json(model_dir: Path, config: MiniGPT4Config, sources: dict | None = None,
                     notes: str | None = None) -> None:
    data = {"format": "lumen-minigpt4", "format_version": FORMAT_VERSION, "config": config.to_dict(),
            "sources": sources or {}}
    if notes:
        data["notes"] = notes
    (model_dir / MODEL_JSON).write_text(json.dumps(data, indent=2) + "\n")


def read_model_json(model_dir: Path) -> MiniGPT4Config:
    path = Path(model_dir) / MODEL_JSON
    if not path.is_file():
        raise CheckpointError(model_dir, f"not a Lumen model folder ({MODEL_JSON} missing)")
    data = read_json(path)
    try:
        if data.get("format") != "lumen-minigpt4":
            raise ValueError("unknown format")
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"made by a newer Lumen (format {data['format_version']})")
        if not isinstance(data.get("config"), dict):
            raise ValueError("no config object")
        return MiniGPT4Config.from_dict(data["config"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(path, f"unreadable model description: {exc}") from exc


def read_model_config(model_dir: Path) -> MiniGPT4Config:
    """A model folder's whole configuration: ``lumen_model.json`` completed by the language model's
    own ``llm/config.json``. The one reader of the format, for the loader, the worker and training;
    ``CheckpointError`` when either file is missing or unreadable."""
    model_dir = Path(model_dir)
    return read_model_json(model_dir).with_llm(read_llm_config(model_dir / LLM_DIR))


def save_model_dir(model, config: MiniGPT4Config, tokenizer_file: Path, out_dir: Path,
                   notes: str | None = None) -> None:
    """Write an in-memory MiniGPT4 (e.g. from training) as a model directory."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    visual = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
              if not k.startswith("language_model.")}
    save_file(visual, str(out_dir / VISUAL_FILE))
    model.language_model.save_pretrained(str(out_dir / LLM_DIR), safe_serialization=True)
    shutil.copyfile(tokenizer_file, out_dir / TOKENIZER_FILE)
    write_model_json(out_dir, config, notes=notes)
