"""Stage-2 data curation as in the MiniGPT-4 paper (section 3.2).

1. **Describe**: the stage-1 model writes a long description of every image with the paper's prompt
   ``###Human: <Img><ImageHere></Img> Describe this image in detail. Give as many details as possible.
   Say everything you see. ###Assistant: ``; while the answer has fewer than ``min_tokens`` tokens the
   conversation continues with ``###Human: Continue ###Assistant: `` (the paper's 80-token rule).
2. **Fix**: a chat LLM rewrites each description with the paper's post-processing prompt, through any
   OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp, Ollama; stdlib urllib)
   or a local transformers chat model.
3. **Filter**: hard-coded rules drop the frequent failures the paper names ("I'm sorry I made a
   mistake...", "I apologize for that...") plus empty/short/non-English results (a dictionary check:
   the share of English words); everything kept goes to ``human_verification.csv``.
4. **Verify** (the paper's manual check): a person marks every row ``approved``, ``edited`` (after
   correcting its caption) or ``rejected``; ``python -m training verify OUT`` builds
   ``filter_cap.json`` from those rows only, and refuses while any row is undecided.

Outputs in ``--out``: ``descriptions.jsonl`` (resumable), ``fixed.jsonl``, ``rejected.jsonl``,
``human_verification.csv`` (rerunning ``curate`` keeps the rows already decided), ``image/``; after
``verify``, ``filter_cap.json`` completes the ``cc_sbu_align`` folder.
"""

from __future__ import annotations

import argparse
import csv
import functools
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

    from engine.minigpt4.generation import generate_reply
    from engine.minigpt4.image_processing import preprocess
    from engine.minigpt4.loading import load_model
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
    share = english_share(text)
    if share < MIN_ENGLISH_SHARE:
        return f"not English ({share:.0%} English words)"
    return None


MIN_ENGLISH_SHARE = 0.75  # fixed MiniGPT-4 descriptions: >= 0.9; other languages <= 0.5; gibberish ~0
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_SUFFIXES = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"), ("ly", ""),
             ("er", ""), ("est", ""))


@functools.cache
def _english_words() -> frozenset[str]:
    from training.data import require

    require("english_words")
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], lower=True))


def _is_english_word(word: str, words: frozenset[str]) -> bool:
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if word in words or all(part in words for part in word.split("-") if part):
        return True
    return any(word.endswith(suf) and word[: len(word) - len(suf)] + rep in words
               for suf, rep in _SUFFIXES if len(word) > len(suf) + 2)


def english_share(text: str) -> float:
    """Share of a text's words (letters only; numbers ignored) found in an English dictionary (web2 +
    GCIDE, plain inflections stripped). Catches other languages in any script and gibberish, which a
    letters-are-ASCII test let through."""
    found = _WORD.findall(text)
    if not found:
        return 0.0
    words = _english_words()
    return sum(_is_english_word(w, words) for w in found) / len(found)


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
    done = {r["image_id"]: r for r in _read_verification(out) if r["verified"].strip()}  # a human's work stays
    rows = [done.get(r["image_id"]) or {"image_id": r["image_id"], "image_path": f"image/{r['image_id']}.jpg",
                                        "caption": r["fixed"], "stage1_description": r["raw"], "verified": "",
                                        "notes": ""} for r in kept]
    with (out / VERIFICATION_FILE).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=VERIFICATION_COLUMNS)
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in VERIFICATION_COLUMNS} for row in rows)


# -- step 3b: the manual check, applied ---------------------------------------------------------------
VERIFICATION_FILE = "human_verification.csv"
VERIFICATION_COLUMNS = ("image_id", "image_path", "caption", "stage1_description", "verified", "notes")
VERDICTS = ("approved", "edited", "rejected")


class VerificationError(ValueError):
    """The verification sheet cannot be applied yet; the message says which rows and why."""


def _read_verification(out: Path) -> list[dict[str, str]]:
    path = out / VERIFICATION_FILE
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a sheet saved back by a spreadsheet
        return [{k: (v or "") for k, v in row.items() if k} for row in csv.DictReader(fh)]


def apply_verification(out: Path) -> dict[str, int]:
    """The paper's step 3, applied: ``human_verification.csv`` -> ``filter_cap.json``.

    Each row's ``verified`` is ``approved`` (the caption as written), ``edited`` (the caption column
    as the person changed it) or ``rejected`` (left out). Every row must be decided and every kept
    caption non-empty; otherwise nothing is written and the rows are named."""
    out = Path(out)
    rows = _read_verification(out)
    if not rows:
        raise VerificationError(f"{out / VERIFICATION_FILE} not found or empty: run `python -m training curate` first")
    problems, annotations, counts = [], [], dict.fromkeys(VERDICTS, 0)
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        verdict = row.get("verified", "").strip().lower()
        if verdict not in VERDICTS:
            problems.append(f"line {line} ({row.get('image_id')}): verified is {row.get('verified', '')!r}, "
                            f"expected one of {', '.join(VERDICTS)}")
            continue
        counts[verdict] += 1
        if verdict == "rejected":
            continue
        caption = row.get("caption", "").strip()
        if not caption:
            problems.append(f"line {line} ({row['image_id']}): {verdict} with an empty caption")
        elif not (out / "image" / f"{row['image_id']}.jpg").is_file():
            problems.append(f"line {line} ({row['image_id']}): image/{row['image_id']}.jpg is missing")
        else:
            annotations.append({"image_id": row["image_id"], "caption": caption})
    if problems:
        raise VerificationError(f"{out / VERIFICATION_FILE}: {len(problems)} row(s) to fix before the set is "
                                "built:\n  " + "\n  ".join(problems[:20]))
    (out / "filter_cap.json").write_text(json.dumps({"annotations": annotations}, indent=1), encoding="utf-8")
    log.info("verified set: %d captions (%s)", len(annotations), counts)
    return {**counts, "captions": len(annotations)}


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
