"""MiniGPT-4 composed from transformers building blocks, in one readable file.

    pixels (B,3,S,S) -> Blip2VisionModel encoder (EVA ViT-g, 39 blocks, no final norm) -> (B,257,1408)
      -> ln_vision (``vision_model.post_layernorm``, eps 1e-5, computed in fp32)      -> (B,257,1408)
      -> Q-Former with 32 learned queries cross-attending to it                       -> (B,32,768)
         (Llama-2 flavour: drop CLS, concatenate 4 consecutive tokens                 -> (B,64,5632))
      -> language_projection (the official ``llama_proj``, the only trained part)     -> (B,32,H)
      -> spliced into the LLM input embeddings at the <ImageHere> positions; LlamaForCausalLM decodes.

Parameter names are Hugging Face's (``vision_model``, ``qformer``, ``query_tokens``,
``language_projection``, ``language_model``); the official names appear only in
``engine.minigpt4.converter``. References: Vision-CAIR/MiniGPT-4 ``minigpt4/models/minigpt4.py``
(``encode_img``, ``get_context_emb``) and docs/minigpt4-reference.md sections 1-5, 7.2, 9.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel, Blip2VisionConfig, Blip2VisionModel
from transformers import LlamaConfig, LlamaForCausalLM

from engine.minigpt4.config import MiniGPT4Config


def vision_hf_config(config: MiniGPT4Config) -> Blip2VisionConfig:
    v = config.vision
    return Blip2VisionConfig(
        hidden_size=v.hidden_size, intermediate_size=v.intermediate_size, num_hidden_layers=v.num_layers,
        num_attention_heads=v.num_heads, image_size=v.image_size, patch_size=v.patch_size,
        hidden_act="gelu", layer_norm_eps=v.layer_norm_eps, qkv_bias=True, attention_dropout=0.0,
    )


def qformer_hf_config(config: MiniGPT4Config) -> Blip2QFormerConfig:
    q = config.qformer
    assert q is not None
    return Blip2QFormerConfig(
        hidden_size=q.hidden_size, num_hidden_layers=q.num_layers, num_attention_heads=q.num_heads,
        intermediate_size=q.intermediate_size, hidden_act="gelu", layer_norm_eps=q.layer_norm_eps,
        cross_attention_frequency=q.cross_attention_freq, encoder_hidden_size=config.vision.hidden_size,
        max_position_embeddings=q.max_position_embeddings, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


class MiniGPT4(nn.Module):
    def __init__(self, config: MiniGPT4Config, language_model: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.vision_model = Blip2VisionModel(vision_hf_config(config))
        # ln_vision: plain torch LayerNorm (eps 1e-5), not the config's 1e-6 (docs/minigpt4-reference.md section 3).
        # Without a BLIP-2 checkpoint (Llama-2 flavour) it keeps weight 1 / bias 0.
        self.vision_model.post_layernorm = nn.LayerNorm(config.vision.hidden_size, eps=config.vision.ln_vision_eps)
        if config.qformer is not None:
            self.query_tokens = nn.Parameter(torch.zeros(1, config.qformer.num_query_tokens, config.qformer.hidden_size))
            self.qformer = Blip2QFormerModel(qformer_hf_config(config))
        else:
            self.query_tokens = None
            self.qformer = None
        self.language_projection = nn.Linear(config.projection_in_features, config.llm_hidden_size)
        self.language_model = language_model if language_model is not None else LlamaForCausalLM(
            LlamaConfig(**config.llm))
        self.freeze_frozen_parts()

    # ------------------------------------------------------------------ training helpers

    def frozen_modules(self) -> list[nn.Module]:
        parts: list[nn.Module] = [self.vision_model, self.language_model]
        if self.qformer is not None:
            parts.append(self.qformer)
        return parts

    def freeze_frozen_parts(self) -> None:
        """Official setup: ViT, ln_vision, Q-Former, queries and LLM frozen and pinned to eval mode."""
        for module in self.frozen_modules():
            module.requires_grad_(False)
            module.eval()
        if self.query_tokens is not None:
            self.query_tokens.requires_grad_(False)

    def train(self, mode: bool = True) -> MiniGPT4:
        super().train(mode)
        for module in self.frozen_modules():
            if not any(p.requires_grad for p in module.parameters()):
                module.eval()  # frozen parts stay in eval mode forever (official `disabled_train`)
        return self

    # ------------------------------------------------------------------ image side

    def _autocast(self, device: torch.device):
        # Official: all GPU computation under autocast(float16); none on the CPU (docs/minigpt4-reference.md section 9).
        if device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return nullcontext()

    def image_features(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage of ``encode_img``, for parity tests and feature caching."""
        vision = self.vision_model
        device = vision.embeddings.patch_embedding.weight.device
        pixel_values = pixel_values.to(device)
        with self._autocast(device):
            hidden = vision.embeddings(pixel_values)                       # (B, 1+P, Dv)
            vit = vision.encoder(inputs_embeds=hidden).last_hidden_state  # (B, 1+P, Dv), no final norm
            ln = vision.post_layernorm
            vit_ln = nn.functional.layer_norm(vit.float(), ln.normalized_shape, ln.weight.float(),
                                              ln.bias.float(), ln.eps).to(vit.dtype)
            out = {"vit_features": vit, "vit_features_ln": vit_ln}
            if self.qformer is not None:
                queries = self.query_tokens.expand(vit_ln.shape[0], -1, -1)
                mask = torch.ones(vit_ln.shape[:2], dtype=torch.long, device=device)
                q = self.qformer(query_embeds=queries, encoder_hidden_states=vit_ln,
                                 encoder_attention_mask=mask).last_hidden_state  # (B, Nq, Dq)
                out["qformer_last_hidden_state"] = q
                tokens = q
            else:
                patches = vit_ln[:, 1:, :]                                  # drop CLS: (B, P, Dv)
                b, p, d = patches.shape
                g = self.config.tokens_per_group                            # 4 consecutive, raster order
                tokens = patches.reshape(b, p // g, d * g)                  # (B, P/4, 4*Dv)
            proj = self.language_projection
            out["image_embeds"] = proj(tokens.to(proj.weight.dtype))
        return out

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, num_image_tokens, H) in the LLM's embedding dtype."""
        embeds = self.image_features(pixel_values)["image_embeds"]
        return embeds.to(self.embedding_dtype)

    # ------------------------------------------------------------------ text side

    @property
    def embedding_layer(self) -> nn.Embedding:
        return self.language_model.get_input_embeddings()

    @property
    def embedding_dtype(self) -> torch.dtype:
        return self.embedding_layer.weight.dtype

    @property
    def llm_device(self) -> torch.device:
        return self.embedding_layer.weight.device

    def embed_ids(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        tensor = torch.as_tensor(ids, dtype=torch.long, device=self.llm_device)
        return self.embedding_layer(tensor)

    def context_embeds(self, segment_ids: Sequence[Sequence[int]], image_embeds: Sequence[torch.Tensor]) -> torch.Tensor:
        """``get_context_emb``: interleave text segments and images -> (1, L, H).

        ``segment_ids[0]`` already starts with BOS; ``image_embeds[i]`` is (n, H) or (1, n, H).
        """
        if len(segment_ids) != len(image_embeds) + 1:
            raise ValueError("need exactly one more text segment than images")
        parts: list[torch.Tensor] = []
        for i, ids in enumerate(segment_ids):
            if len(ids):
                parts.append(self.embed_ids(ids))
            if i < len(image_embeds):
                img = image_embeds[i]
                parts.append(img.reshape(-1, img.shape[-1]).to(self.llm_device, self.embedding_dtype))
        return torch.cat(parts, dim=0).unsqueeze(0)
