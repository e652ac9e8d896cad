"""Stage-2 data curation as in the MiniGPT-4 paper (section 3.2).

1. **Describe**: the stage-1 model writes a long description of every image with the paper's prompt
   ``###Human: <Img><ImageHere></Img> Describe this image in detail. Give as many details as possible.
   Say everything you see. ###Assistant: ``; while the answer has fewer than ``min_tokens`` tokens the
   conversation continues with ``###Human: Continue ###Assistant: `` (the paper's 80-token rule).
2. **Fix**: a chat LLM rewrites each description with the paper's post-processing prompt, through any
   OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp, Ollama; stdlib urllib)
   or a local transformers chat model.
3. **Filter**: hard-coded rules drop the frequent failures the paper names ("I'm sorry I made a
   mistake...", "I apologize for that...") plus empty/short/non-English results; everything kept goes
   to ``human_verification.csv`` for the manual check the paper describes.

Outputs in ``--out``: ``descriptions.jsonl`` (resumable), ``fixed.jsonl``, ``rejected.jsonl``,
``human_verification.csv``, and a ready ``cc_sbu_align`` folder: ``filter_cap.json`` + ``image/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)

DESCRIBE_PROMPT = ("###Human: <Img><ImageHere></Img> Describe this image in detail. Give as many details as "
                   "possible. Say everything you see. ###Assistant: ")
CONTINUE_PROMPT = "###Human: Continue ###Assistant: "
FIX_PROMPT = ("Fix the error in the given paragraph. Remove any repeating sentences, meanless characters, not "
              "English sentences, and so on. Remove unnecessary repetition. Rewrite any incomplete sentences. "
              "Return directly the results without explanation. Return directly the input paragraph if it is "
              "already correct without explanation.")
REJECT_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\bI(?:'m| am) sorry\b", r"\bI apologi[sz]e\b", r"\bmade a mistake\b", r"\bas an AI\b",
    r"\bI (?:cannot|can't|could not|couldn't|am unable to|do not|don't) (?:see|understand|fix|provide|determine)\b",
    r"\bthe given paragraph\b", r"\bhere is the (?:corrected|fixed|revised)\b",
))
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


# -- step 1: long descriptions with the stage-1 model ---------------------------------------------
def describe_images(model_dir: str | Path, images: list[Path], out_file: Path, min_tokens: int = 80,
                    max_new_tokens: int = 300, max_rounds: int = 3, device: str = "auto") -> dict[str, str]:
    """Greedy long descriptions, appended to ``out_file`` as they are made (a rerun skips done ones)."""
    import torch

    from engine.generation import generate_reply
    from engine.image_processing import preprocess
    from engine.loading import load_model
    from engine.protocol import GenerationSettings

    done = {r["image_id"]: r["raw"] for r in _read_jsonl(out_file)}
    todo = [p for p in images if p.stem not in done]
    if not todo:
        return done
    loaded = load_model(model_dir, device=device, dtype="auto")
    model, tok = loaded.model, loaded.tokenizer
    settings = GenerationSettings.greedy(max_new_tokens=max_new_tokens, max_length=max_new_tokens + 2000)
    with out_file.open("a", encoding="utf-8") as fh:
        for path in todo:
            try:
                image = Image.open(path).convert("RGB")
            except Exception as exc:  # unreadable image: skipped and reported, never fatal
                log.warning("skipping %s: %s", path, exc)
                continue
            with torch.inference_mode():
                embeds = model.encode_image(preprocess([image], model.config.vision.image_size,
                                                       model.config.image_mean, model.config.image_std))
                prompt, answer = DESCRIBE_PROMPT, ""
                for _ in range(max_rounds):
                    before, after = prompt.split("<ImageHere>")
                    ctx = model.context_embeds([tok.encode(before, add_bos=True), tok.encode(after)], [embeds[0]])
                    part = generate_reply(model, tok, ctx, settings).text
                    answer = f"{answer} {part}".strip()
                    if len(tok.encode(answer)) >= min_tokens or not part:
                        break
                    prompt = f"{prompt}{part}{CONTINUE_PROMPT}"
            done[path.stem] = answer
            fh.write(json.dumps({"image_id": path.stem, "raw": answer}) + "\n")
            fh.flush()
    return done


# -- step 2: fixing with a chat LLM -----------------------------------------------------------------
class FixerError(RuntimeError):
    pass


@dataclass(frozen=True)
class OpenAIChatFixer:
    """POST ``{base_url}/chat/completions`` (OpenAI-compatible); the key comes from an env variable."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0

    def fix(self, paragraph: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0, "messages": [
            {"role": "system", "content": FIX_PROMPT}, {"role": "user", "content": paragraph}]}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        last: Exception | None = None
        for attempt in range(self.retries):
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                return str(data["choices"][0]["message"]["content"]).strip()
            except (urllib.error.URLError, TimeoutError, KeyError, IndexError, ValueError) as exc:
                last = exc
                log.warning("fixer request failed (attempt %d/%d): %s", attempt + 1, self.retries, exc)
                time.sleep(self.backoff * (2 ** attempt))
        raise FixerError(f"{url}: {last}")


class LocalChatFixer:
    """A local transformers chat model (any folder with a chat template), greedy decoding."""

    def __init__(self, model_dir: str | Path, max_new_tokens: int = 512):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True).eval()
        self.max_new_tokens = max_new_tokens

    def fix(self, paragraph: str) -> str:
        import torch

        messages = [{"role": "system", "content": FIX_PROMPT}, {"role": "user", "content": paragraph}]
        ids = self.tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
        with torch.inference_mode():
            out = self.model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


# -- step 3: the paper's filter ---------------------------------------------------------------------
def reject_reason(text: str, min_words: int = 8) -> str | None:
    """Why a fixed description is dropped, or None to keep it."""
    if not text.strip():
        return "empty"
    for pattern in REJECT_PATTERNS:
        if pattern.search(text):
            return f"matches {pattern.pattern!r}"
    if len(text.split()) < min_words:
        return f"shorter than {min_words} words"
    letters = [c for c in text if c.isalpha()]
    if not letters or sum(c.isascii() for c in letters) / len(letters) < 0.9:
        return "not English"
    return None


def curate(images_dir: Path, out: Path, fixer, model_dir: Path | None = None, min_tokens: int = 80,
           max_new_tokens: int = 300, min_words: int = 8, limit: int = 0) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS)[: limit or None]
    desc_file = out / "descriptions.jsonl"
    if model_dir is not None:
        raw = describe_images(model_dir, images, desc_file, min_tokens, max_new_tokens)
    else:  # descriptions made earlier (or elsewhere)
        raw = {r["image_id"]: r["raw"] for r in _read_jsonl(desc_file)}
    by_id = {p.stem: p for p in images}
    kept, rejected = [], []
    for image_id, text in raw.items():
        if image_id not in by_id:
            continue
        try:
            fixed = fixer.fix(text)
        except FixerError as exc:
            rejected.append({"image_id": image_id, "raw": text, "fixed": None, "reason": f"fixer failed: {exc}"})
            continue
        reason = reject_reason(fixed, min_words)
        record = {"image_id": image_id, "raw": text, "fixed": fixed}
        (rejected.append({**record, "reason": reason}) if reason else kept.append(record))
    _write_outputs(out, kept, rejected, by_id)
    summary = {"images": len(images), "described": len(raw), "kept": len(kept), "rejected": len(rejected)}
    log.info("curation: %s", summary)
    return summary


def _write_outputs(out: Path, kept: list[dict], rejected: list[dict], by_id: dict[str, Path]) -> None:
    _write_jsonl(out / "fixed.jsonl", kept)
    _write_jsonl(out / "rejected.jsonl", rejected)
    (out / "image").mkdir(exist_ok=True)
    for rec in kept:  # the aligned folder wants <id>.jpg
        Image.open(by_id[rec["image_id"]]).convert("RGB").save(out / "image" / f"{rec['image_id']}.jpg", quality=95)
    annotations = [{"image_id": r["image_id"], "caption": r["fixed"]} for r in kept]
    (out / "filter_cap.json").write_text(json.dumps({"annotations": annotations}, indent=1), encoding="utf-8")
    with (out / "human_verification.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image_id", "image_path", "caption", "stage1_description", "verified", "notes"])
        for r in kept:
            writer.writerow([r["image_id"], f"image/{r['image_id']}.jpg", r["fixed"], r["raw"], "", ""])


def _read_jsonl(path: Path) -> Iterable[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# -- command line -------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", help="folder of candidate images")
    p.add_argument("out", help="output folder (becomes a cc_sbu_align folder)")
    p.add_argument("--model_dir", help="stage-1 model directory; omit to reuse out/descriptions.jsonl")
    p.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1")
    p.add_argument("--api_model", default="gpt-3.5-turbo", help="model name sent to the endpoint")
    p.add_argument("--api_key_env", default="OPENAI_API_KEY", help="environment variable holding the key")
    p.add_argument("--local_llm", help="local transformers chat model folder instead of an endpoint")
    p.add_argument("--min_tokens", type=int, default=80)
    p.add_argument("--max_new_tokens", type=int, default=300)
    p.add_argument("--min_words", type=int, default=8)
    p.add_argument("--limit", type=int, default=0)


def main(args: argparse.Namespace) -> int:
    if bool(args.endpoint) == bool(args.local_llm):
        raise FileNotFoundError("give exactly one of --endpoint or --local_llm for the fixing step")
    fixer = (OpenAIChatFixer(args.endpoint, args.api_model, os.environ.get(args.api_key_env))
             if args.endpoint else LocalChatFixer(args.local_llm))
    curate(Path(args.images), Path(args.out), fixer, Path(args.model_dir) if args.model_dir else None,
           args.min_tokens, args.max_new_tokens, args.min_words, args.limit)
    return 0
