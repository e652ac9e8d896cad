"""The MiniGPT-4 training objective, exactly as the official ``forward`` builds it.

Mirrors ``minigpt4/models/minigpt_base.py`` (``prompt_wrap``, ``preparing_embedding``,
``concat_emb_input_output``, ``forward``) and docs/minigpt4-reference.md section 8:

* wrap: the instruction is split on ``<ImageHere>``, each piece tokenised without special tokens and
  embedded, the image embeddings placed between them; no instruction -> the wrap is the image alone;
  per-sample instructions of different lengths are right-padded with pad-id embeddings;
* targets: ``answer + end_sym`` tokenised without special tokens (``</s>`` becomes id 2), truncated
  to ``max_txt_len`` (a truncated target loses its end symbol), right-padded with the pad id;
* input = ``[BOS embedding] + wrap_i + target_i + target pads + wrap pads`` (the wrap's padding is
  moved after the target); attention 1 on BOS, wrap and real target tokens;
* labels: -100 everywhere except real target tokens; positions whose id equals the pad id are -100
  (so a literal ``$$`` in a caption is never supervised, as official);
* loss: float32 logits, causal shift, mean cross-entropy over supervised tokens.

The tokenizer, prompts and model are the engine's (no second copy).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from engine.minigpt4.prompts import ALIGNMENT_PROMPTS, IMAGE_PLACEHOLDER, get_template

IGNORE_INDEX = -100
MAX_CONTEXT_LEN = 3800  # official default of MiniGPTBase (wraps longer than this are cut)


def stage2_instructions(template: str, prompts: Sequence[str] | None = None, fmt: str | None = None
                        ) -> tuple[str, ...]:
    """The official prompt list: every prompt containing ``<ImageHere>`` (others are dropped, as
    official), put into the template's training instruction (or ``fmt``)."""
    fmt = fmt or get_template(template).train_instruction
    prompts = ALIGNMENT_PROMPTS if prompts is None else prompts
    return tuple(fmt.format(p) for p in prompts if IMAGE_PLACEHOLDER in p)


@dataclass(frozen=True)
class ModelInputs:
    inputs_embeds: torch.Tensor  # (B, L, H)
    attention_mask: torch.Tensor  # (B, L) int64
    labels: torch.Tensor  # (B, L) int64, -100 = not supervised


class Objective:
    """Builds ``ModelInputs`` from image embeddings and answers; computes the official loss."""

    def __init__(self, tokenizer, end_sym: str, max_txt_len: int,
                 instructions: Sequence[str] | None = None, max_context_len: int = MAX_CONTEXT_LEN):
        self.tokenizer = tokenizer
        self.end_sym = end_sym
        self.max_txt_len = max_txt_len
        self.instructions = tuple(instructions or ())
        self.max_context_len = max_context_len
        self._encode = lru_cache(maxsize=4096)(lambda text: tuple(tokenizer.encode(text, add_bos=False)))

    def choose_instruction(self, rng: random.Random) -> str | None:
        """One prompt per batch (official ``random.choice(self.prompt_list)``), or None in stage 1."""
        return rng.choice(self.instructions) if self.instructions else None

    # -- targets ----------------------------------------------------------------------------------
    def target_ids(self, answers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) ids right-padded with the pad id and their attention mask (tokenizer padding='longest')."""
        rows = [list(self._encode(a + self.end_sym))[: self.max_txt_len] for a in answers]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_id, dtype=torch.long)
        atts = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            atts[i, : len(r)] = 1
        return ids, atts

    # -- wrap ---------------------------------------------------------------------------------------
    def wrap(self, model, image_embeds: torch.Tensor, instruction: str | Sequence[str] | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """``prompt_wrap``: (B, n, H) image embeds -> (B, W, H) wrapped embeds and (B, W) mask."""
        b = image_embeds.shape[0]
        if not instruction:
            return image_embeds, torch.ones(image_embeds.shape[:2], dtype=torch.long, device=image_embeds.device)
        prompts = [instruction] * b if isinstance(instruction, str) else list(instruction)
        if isinstance(instruction, str):  # one prompt for the batch: no padding, build it batched
            emb = self._wrap_one(model, image_embeds, instruction)
            emb = emb[:, : self.max_context_len]
            return emb, torch.ones(emb.shape[:2], dtype=torch.long, device=emb.device)
        embs = [self._wrap_one(model, image_embeds[i: i + 1], p)[0] for i, p in enumerate(prompts)]
        lens = [min(e.shape[0], self.max_context_len) for e in embs]
        pad = model.embed_ids([self.tokenizer.pad_id])[0]
        out = pad.expand(b, max(lens), -1).clone()
        atts = torch.zeros((b, max(lens)), dtype=torch.long, device=out.device)
        for i, (e, n) in enumerate(zip(embs, lens)):
            out[i, :n] = e[:n]
            atts[i, :n] = 1
        return out, atts

    def _wrap_one(self, model, image_embeds: torch.Tensor, prompt: str) -> torch.Tensor:
        segments = prompt.split(IMAGE_PLACEHOLDER)
        if len(segments) != 2:
            raise ValueError(f"a training instruction needs exactly one {IMAGE_PLACEHOLDER}: {prompt!r}")
        b = image_embeds.shape[0]
        parts = []
        for i, seg in enumerate(segments):
            ids = self._encode(seg)
            if ids:
                parts.append(model.embed_ids(list(ids)).unsqueeze(0).expand(b, -1, -1))
            if i == 0:
                parts.append(image_embeds.to(model.embedding_dtype))
        return torch.cat(parts, dim=1)

    # -- whole input ----------------------------------------------------------------------------
    def build(self, model, image_embeds: torch.Tensor, answers: Sequence[str],
              instruction: str | Sequence[str] | None) -> ModelInputs:
        device = image_embeds.device
        cond, cond_atts = self.wrap(model, image_embeds, instruction)
        ids, atts = self.target_ids(answers)
        ids, atts = ids.to(device), atts.to(device)
        targets = ids.masked_fill(ids == self.tokenizer.pad_id, IGNORE_INDEX)
        target_embeds = model.embedding_layer(ids)
        b = cond.shape[0]
        bos = model.embed_ids([self.tokenizer.bos_id]).unsqueeze(0).expand(b, -1, -1)
        embeds, masks, labels = [], [], []
        for i in range(b):  # concat_emb_input_output: the wrap's padding moves after the target
            n = int(cond_atts[i].sum())
            embeds.append(torch.cat([bos[i], cond[i, :n], target_embeds[i], cond[i, n:]]))
            masks.append(torch.cat([cond_atts[i, :1], cond_atts[i, :n], atts[i], cond_atts[i, n:]]))
            lab = torch.full((embeds[-1].shape[0],), IGNORE_INDEX, dtype=torch.long, device=device)
            lab[1 + n: 1 + n + targets.shape[1]] = targets[i]
            labels.append(lab)
        return ModelInputs(torch.stack(embeds), torch.stack(masks).long(), torch.stack(labels))


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Official LM loss: float32 logits, shift by one, CE with ignore -100.

    ``reduction='none'`` reproduces the official per-sample quirk: summed token losses divided by the
    full shifted length, not by the number of supervised tokens.
    """
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:].to(shift_logits.device)
    if reduction == "mean":
        return F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
                               ignore_index=IGNORE_INDEX)
    tok = F.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=IGNORE_INDEX, reduction="none")
    return tok.sum(dim=1) / tok.shape[1]


def forward_loss(model, inputs: ModelInputs, reduction: str = "mean") -> torch.Tensor:
    """Run the LLM on the assembled inputs and return the official loss."""
    out = model.language_model(inputs_embeds=inputs.inputs_embeds, attention_mask=inputs.attention_mask,
                               use_cache=False)
    return lm_loss(out.logits, inputs.labels, reduction)
