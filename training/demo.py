"""``python -m training demo``: prove that training learns, and build the app's demo model.

1. Generate a synthetic set (``training.synthetic``: colour, shape, position; short captions) in the
   stage-2 ``cc_sbu_align`` layout, plus a held-out test split.
2. Train a SentencePiece tokenizer with LLaMA's options on the prompts and captions.
3. Build a random tiny MiniGPT-4 (engine model class) and save it as an engine model directory.
4. Train it with the normal stage-2 recipe. **Unlike the official stages, the demo also trains the
   tiny LLM, the Q-Former and the query tokens** (only the random ViT stays frozen): a randomly
   initialised language model cannot speak, so projection-only training could not produce text.
   The instructions are the app's own prompt (system prompt + Vicuna template + the question), so the
   model answers the questions the app asks exactly as the engine renders them.
5. Evaluate attribute accuracy with greedy decoding through the engine's generation code on the
   held-out images, and export the model (labelled as a demo) with a README and the metrics.

Everything is seeded; on the same machine and library versions a rebuild gives the same files.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import torch

from training import config
from training.synthetic import COLOURS, POSITIONS, SHAPES, make_split, parse_attributes

log = logging.getLogger(__name__)

# The app's preset questions (resources/prompts) and the official alignment questions.
TRAIN_QUESTIONS = (
    "Describe this image briefly, in one or two sentences.",
    "Describe this image in detail. Start with what it is, then the main parts from top to bottom, including "
    "any text you can read. Say when you are unsure.",
    "Read the text in this image from top to bottom, then say in one sentence what kind of screen or document it is.",
    "Describe this image in detail.",
    "Take a look at this image and describe what you notice.",
    "Please provide a detailed description of the picture.",
    "Could you describe the contents of this image for me?",
    "What is in this picture?",
    "Describe this screen.",
)
HELD_OUT_QUESTION = "What can you see here?"  # never seen in training
IMAGE_SIZE = 112
DEMO_NOTE = ("DEMO MODEL: a tiny MiniGPT-4 trained only on synthetic shapes (colour, shape, position) by "
             "`python -m training demo`. It is not a real vision-language model; it exists so that the app "
             "can be tried end to end and tested with real, deterministic answers.")


def demo_model_config(vocab_size: int):
    from engine.minigpt4.config import MiniGPT4Config, QFormerConfig, VisionConfig, _llama

    llm = _llama(128, 2, 4, 344, 1e-6, 2048)
    llm["vocab_size"] = vocab_size
    return MiniGPT4Config(
        name="lumen-demo-tiny",
        vision=VisionConfig(image_size=IMAGE_SIZE, patch_size=14, hidden_size=64, num_layers=2, num_heads=4,
                            intermediate_size=256),
        qformer=QFormerConfig(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128,
                              num_query_tokens=8, max_position_embeddings=64),
        llm=llm, template="vicuna0",
    )


@torch.no_grad()
def init_random_encoder(model) -> None:
    """Give the random ViT and Q-Former usable scales (the fixtures' recipe: weights ~ N(0, 1/fan_in),
    biases ~ N(0, 0.1^2), cls/position embeddings ~ N(0, 0.5^2), queries ~ N(0, 1)).

    Hugging Face's BLIP-2 vision init uses ``initializer_range=1e-10``, which makes a *random* ViT
    output ~1e-9 everywhere: after ``ln_vision`` (eps 1e-5) every image looks the same and nothing
    can be learned from it. Real checkpoints overwrite all of this.
    """
    import math

    for module in list(model.vision_model.modules()) + list(model.qformer.modules()):
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            module.weight.normal_(0.0, 1.0 / math.sqrt(module.weight[0].numel()))
            if module.bias is not None:
                module.bias.normal_(0.0, 0.1)
    emb = model.vision_model.embeddings
    emb.class_embedding.normal_(0.0, 0.5)
    emb.position_embedding.normal_(0.0, 0.5)
    model.query_tokens.normal_(0.0, 1.0)


def train_tokenizer(out_file: Path, corpus: list[str], vocab_size: int = 600) -> Path:
    """SentencePiece BPE with LLaMA's trainer options (byte fallback, split digits, identity
    normalisation, <unk>=0 <s>=1 </s>=2, no pad piece); ``$$`` is a piece, as in LLaMA."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()  # in memory: no file paths end up inside the model (byte-identical rebuilds)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, model_type="bpe", vocab_size=vocab_size,
        byte_fallback=True, split_digits=True, add_dummy_prefix=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, user_defined_symbols=["$$"],
        character_coverage=1.0, num_threads=1, shuffle_input_sentence=False, hard_vocab_limit=False,
        minloglevel=2,
    )
    out_file.write_bytes(model.getvalue())
    return out_file


def _corpus(captions: list[str]) -> list[str]:
    from engine.minigpt4.prompts import SYSTEM_PROMPT

    lines = [f"{SYSTEM_PROMPT}###Human: <Img><ImageHere></Img> {q}###Assistant: " for q in TRAIN_QUESTIONS]
    lines += [HELD_OUT_QUESTION, "Continue", "[INST] [/INST] ###"]
    return lines * 20 + captions


def evaluate(model_dir: Path, samples, images_dir: Path, questions: tuple[str, ...]) -> dict:
    """Greedy answers through the engine (load_model, prompts, generate_reply) -> attribute accuracy."""
    from PIL import Image

    from engine.minigpt4.generation import generate_reply
    from engine.minigpt4.image_processing import preprocess
    from engine.minigpt4.loading import load_model
    from engine.minigpt4.prompts import build_prompt, get_template, split_on_images
    from engine.protocol import GenerationSettings

    loaded = load_model(model_dir, device="cpu", dtype="float32", check_memory_first=False)
    model, tok, cfg = loaded.model, loaded.tokenizer, loaded.config
    template = get_template(cfg.template)
    settings = GenerationSettings.greedy(max_new_tokens=24)
    results = {}
    for question in questions:
        hits = {"colour": 0, "shape": 0, "position": 0, "all": 0}
        examples = []
        for s in samples:
            image = Image.open(images_dir / f"{s.image_id}.jpg")
            before, after = split_on_images(build_prompt(template, (), question, 1), 1)
            with torch.inference_mode():
                emb = model.encode_image(preprocess([image], cfg.vision.image_size, cfg.image_mean, cfg.image_std))
                ctx = model.context_embeds([tok.encode(before, add_bos=True), tok.encode(after)], [emb[0]])
                answer = generate_reply(model, tok, ctx, settings, stop_string=template.stop_string).text
            got = parse_attributes(answer)
            ok = {"colour": got["colour"] == s.colour, "shape": got["shape"] == s.shape,
                  "position": got["position"] == s.position}
            for k, v in ok.items():
                hits[k] += v
            hits["all"] += all(ok.values())
            if len(examples) < 5:
                examples.append({"truth": s.caption, "answer": answer})
        results[question] = {k: v / len(samples) for k, v in hits.items()} | {"examples": examples}
    return results


def build_demo(out: str | Path, work_dir: str | Path = "runs/demo", stage1_steps: int = 1500, stage2_steps: int = 200,
               train_size: int = 2000, test_size: int = 300, seed: int = 0, batch_size: int = 32) -> dict:
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # results independent of the core count; steady on a shared CPU
    try:
        return _build(Path(out), Path(work_dir), stage1_steps, stage2_steps, train_size, test_size, seed,
                      batch_size, t0)
    finally:
        torch.set_num_threads(threads)


def _build(out: Path, work: Path, stage1_steps: int, stage2_steps: int, train_size: int, test_size: int,
           seed: int, batch_size: int, t0: float) -> dict:
    from engine.minigpt4.converter import save_model_dir
    from engine.minigpt4.modeling import MiniGPT4
    from engine.minigpt4.prompts import SYSTEM_PROMPT
    from engine.minigpt4.tokenizer import Tokenizer
    from training.recipe import train

    shutil.rmtree(work, ignore_errors=True)
    train_dir, test_dir = work / "data" / "train", work / "data" / "test"
    train_set = make_split(train_dir, train_size, seed=seed + 1, size=112, prefix="s")
    test_set = make_split(test_dir, test_size, seed=seed + 2, size=112, prefix="t")
    tok_file = train_tokenizer(work / "tokenizer.model", _corpus([s.caption for s in train_set]))
    tok = Tokenizer(tok_file)

    torch.manual_seed(seed)
    model_cfg = demo_model_config(tok.vocab_size)
    base = MiniGPT4(model_cfg)
    init_random_encoder(base)
    save_model_dir(base, model_cfg, tok_file, work / "base", notes="random initialisation")
    prompts = work / "prompts.txt"
    prompts.write_text("".join(f"<Img><ImageHere></Img> {q}\n" for q in TRAIN_QUESTIONS), encoding="utf-8")
    from training.prepare import prepare_shards, shard_pattern

    pairs = work / "stage1_pairs.jsonl"
    pairs.write_text("".join(json.dumps({"image": f"data/train/image/{x.image_id}.jpg", "caption": x.caption}) + "\n"
                             for x in train_set), encoding="utf-8")
    prepare_shards(pairs, work / "shards", image_size=112, samples_per_shard=500)
    common = dict(trainable=("language_projection", "qformer", "query_tokens", "language_model"),
                  batch_size=batch_size, max_epoch=1, warmup_lr=1e-5, weight_decay=0.01, max_txt_len=32,
                  train_crop="current", mixed_precision="no", cpu=True, num_workers=0, seed=seed,
                  tensorboard=False, save_every=0, progress=False)
    # stage 1: image-caption pairs from webdataset shards, no prompt, cleaned captions + "\n"
    s1 = config.stage1(model_dir=str(work / "base"), laion_shards=shard_pattern(work / "shards"),
                       output_dir=str(work / "stage1"), iters_per_epoch=stage1_steps, init_lr=1.5e-3,
                       min_lr=1e-4, warmup_steps=max(1, stage1_steps // 30), log_every=max(1, stage1_steps // 20),
                       init_from="", **common)
    first = train(s1)
    # stage 2: the app's prompts (system prompt + Vicuna template + question), raw captions + "###"
    s2 = config.stage2(model_dir=str(first.exported), aligned_dir=str(train_dir), output_dir=str(work / "stage2"),
                       prompt_path=str(prompts), prompt_template=SYSTEM_PROMPT + "###Human: {}###Assistant: ",
                       iters_per_epoch=stage2_steps, init_lr=5e-4, min_lr=5e-5, warmup_steps=max(1, stage2_steps // 20),
                       log_every=max(1, stage2_steps // 10), **common)
    result = train(s2)
    metrics = evaluate(result.exported, test_set, test_dir / "image", (TRAIN_QUESTIONS[0], HELD_OUT_QUESTION))
    summary = {"train_samples": train_size, "test_samples": test_size, "stage1_steps": first.steps,
               "stage1_final_loss": first.last_loss, "stage2_steps": result.steps,
               "batch_size": batch_size, "final_loss": result.last_loss, "seed": seed,
               "train_seconds": round(time.perf_counter() - t0, 1), "accuracy": metrics,
               "attributes": {"colours": list(COLOURS), "shapes": list(SHAPES), "positions": list(POSITIONS)}}
    _publish(result.exported, out, summary)
    log.info("demo model written to %s: %s", out, json.dumps({q: {k: v for k, v in m.items() if k != "examples"}
                                                              for q, m in metrics.items()}))
    return summary


def _publish(exported: Path, out: Path, summary: dict) -> None:
    from engine.minigpt4.converter import MODEL_JSON

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(exported, out)
    meta = json.loads((out / MODEL_JSON).read_text())
    meta["notes"] = DEMO_NOTE
    meta["demo"] = True
    (out / MODEL_JSON).write_text(json.dumps(meta, indent=2) + "\n")
    (out / "demo_metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "README.md").write_text(_readme(summary), encoding="utf-8")


def _readme(summary: dict) -> str:
    acc = summary["accuracy"]
    rows = "\n".join(f"| {q} | {m['colour']:.1%} | {m['shape']:.1%} | {m['position']:.1%} | {m['all']:.1%} |"
                     for q, m in acc.items())
    ex = next(iter(acc.values()))["examples"][:3]
    examples = "\n".join(f"- truth: {e['truth']!r} -> answer: {e['answer']!r}" for e in ex)
    return f"""# Lumen demo model (NOT a real MiniGPT-4)

{DEMO_NOTE}

It is an engine model directory (`lumen_model.json`, `visual.safetensors`, `llm/`, `tokenizer.model`)
and loads with `engine.minigpt4.loading.load_model` like a converted official model.

## What it can do

It answers any question about an image with one sentence naming the colour ({", ".join(summary["attributes"]["colours"])}),
shape ({", ".join(summary["attributes"]["shapes"])}) and position ({", ".join(summary["attributes"]["positions"])})
of a single shape on a light background, e.g. "A red circle on the left.". On anything else (screenshots,
photos) it still answers with such a sentence: that is expected.

## How it was made

`python -m training demo` (training/demo.py), seed {summary["seed"]}, {summary["train_seconds"]} s in all on a
shared 2-core CPU, with the normal recipe of both stages on {summary["train_samples"]} synthetic images:

1. stage 1: {summary["stage1_steps"]} steps of batch {summary["batch_size"]} on webdataset shards made by
   `python -m training prepare` (no prompt, cleaned captions, end symbol newline; final loss
   {summary["stage1_final_loss"]:.3f});
2. stage 2: {summary["stage2_steps"]} steps of batch {summary["batch_size"]} on the aligned-folder layout with the
   app's own prompt (system prompt + Vicuna template + one of {len(TRAIN_QUESTIONS)} questions), end symbol `###`
   (final loss {summary["final_loss"]:.3f}).

**Unlike the official stages, the demo also trains the tiny LLM, the Q-Former and the query tokens** (a
randomly initialised language model cannot speak, so training only the projection could not produce text);
only the random ViT stays frozen.

## Held-out accuracy (greedy decoding through the engine, {summary["test_samples"]} unseen synthetic images)

| question | colour | shape | position | all three |
|---|---|---|---|---|
{rows}

Examples:
{examples}

Rebuild: `python -m training demo --out resources/demo_model` (deterministic for a given machine and
library versions; the numbers are in `demo_metrics.json`).
"""
