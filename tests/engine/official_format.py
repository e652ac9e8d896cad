"""Write a MiniGPT4's weights back in the *official* file formats (the inverse of engine.minigpt4.converter).

Used to prove that the converter works on any tiny configuration, not only the parity fixtures'.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch


def official_eva(state: dict[str, torch.Tensor], extra_block: bool = True) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    rules = [
        (r"^vision_model\.embeddings\.class_embedding$", "cls_token"),
        (r"^vision_model\.embeddings\.position_embedding$", "pos_embed"),
        (r"^vision_model\.embeddings\.patch_embedding\.(weight|bias)$", r"patch_embed.proj.\1"),
        (r"^vision_model\.encoder\.layers\.(\d+)\.layer_norm([12])\.(weight|bias)$", r"blocks.\1.norm\2.\3"),
        (r"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.weight$", r"blocks.\1.attn.qkv.weight"),
        (r"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.projection\.(weight|bias)$", r"blocks.\1.attn.proj.\2"),
        (r"^vision_model\.encoder\.layers\.(\d+)\.mlp\.fc([12])\.(weight|bias)$", r"blocks.\1.mlp.fc\2.\3"),
    ]
    depth = 0
    for key, value in state.items():
        m = re.match(r"vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.bias$", key)
        if m:
            d = value.shape[0] // 3
            out[f"blocks.{m.group(1)}.attn.q_bias"] = value[:d].clone()
            out[f"blocks.{m.group(1)}.attn.v_bias"] = value[2 * d:].clone()
            depth = max(depth, int(m.group(1)) + 1)
            continue
        for pattern, repl in rules:
            if re.search(pattern, key):
                out[re.sub(pattern, repl, key)] = value.clone()
    if extra_block:  # like EVA-CLIP-g's 40th block, which must be ignored
        for key in [k for k in out if k.startswith(f"blocks.{depth - 1}.")]:
            out[key.replace(f"blocks.{depth - 1}.", f"blocks.{depth}.")] = torch.randn_like(out[key].float()).to(out[key].dtype)
    return {k: v.half() for k, v in out.items()}  # the released EVA file is fp16


def official_blip2(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "query_tokens":
            out[key] = value.clone()
        elif key.startswith("vision_model.post_layernorm."):
            out["ln_vision." + key.rsplit(".", 1)[1]] = value.clone()
        elif key.startswith("qformer.layernorm."):
            out["Qformer.bert.embeddings.LayerNorm." + key.rsplit(".", 1)[1]] = value.clone()
        elif key.startswith("qformer.encoder.layer."):
            name = re.sub(r"\.(attention|crossattention)\.attention\.", r".\1.self.", key[len("qformer."):])
            out["Qformer.bert." + name] = value.clone()
    out["Qformer.bert.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    out["t5_proj.weight"] = torch.zeros(8, 4)
    return {"model": out}


def official_projection(state: dict[str, torch.Tensor]) -> dict[str, object]:
    model = {"llama_proj." + k.rsplit(".", 1)[1]: v.clone() for k, v in state.items()
             if k.startswith("language_projection.")}
    return {"model": model, "optimizer": None, "config": {}, "scaler": None, "epoch": 3}


def write_official_files(model, out: Path) -> dict[str, Path]:
    """eva_vit_g.pth, blip2_pretrained_flant5xxl.pth, pretrained_minigpt4.pth and llm/ for ``model``."""
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith("language_model.")}
    paths = {"eva_vit": out / "eva_vit_g.pth", "projection": out / "pretrained_minigpt4.pth", "llm_dir": out / "llm"}
    torch.save(official_eva(state), paths["eva_vit"])
    torch.save(official_projection(state), paths["projection"])
    if model.qformer is not None:
        paths["blip2"] = out / "blip2_pretrained_flant5xxl.pth"
        torch.save(official_blip2(state), paths["blip2"])
    model.language_model.save_pretrained(str(paths["llm_dir"]), safe_serialization=False)
    return paths
