"""Training throughput (samples/s per device) with and without the frozen-feature cache.

Tiny model on the CPU by default; the two modes alternate in one process (A B A B ...) and the
medians are reported side by side with their ratio, so machine noise hits both alike. With a GPU,
``--size 7b`` or ``--size 13b`` builds a full-size MiniGPT-4 with random weights (bf16 LLM, fp32
projection, autocast) and reports samples/s and MFU for stage-1 (batch 64) and stage-2 (batch 12)
shaped batches (targets: docs/performance.md section 5). Pixels are synthetic, so the numbers are
compute only; a real run also saves all JPEG decoding with the cache.

    python benchmarks/training_throughput.py                 # tiny, CPU
    python benchmarks/training_throughput.py --size 7b       # needs a CUDA GPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.minigpt4.config import tiny, vicuna0_7b, vicuna0_13b  # noqa: E402
from engine.minigpt4.modeling import MiniGPT4  # noqa: E402
from engine.minigpt4.tokenizer import Tokenizer  # noqa: E402
from training.features import projection_inputs  # noqa: E402
from training.model import param_groups, set_trainable  # noqa: E402
from training.objective import Objective, stage2_instructions  # noqa: E402
from training.recipe import TrainingModule  # noqa: E402
from training.throughput import flops_per_sample, mfu, peak_flops  # noqa: E402

CAPTION = "a man riding a bicycle down a busy street next to a red bus and a row of shops"
ANSWER = ("The image shows a busy city street with a red double-decker bus, several cyclists and pedestrians, "
          "tall buildings on both sides and shop signs above the pavement on a cloudy day.")


def build(size: str, device: torch.device, tokenizer_file: Path):
    cfg = {"tiny": tiny, "7b": vicuna0_7b, "13b": vicuna0_13b}[size]()
    tok = Tokenizer(tokenizer_file)
    if size == "tiny":
        from dataclasses import replace

        cfg = replace(cfg, llm={**cfg.llm, "vocab_size": tok.vocab_size})
    llm_dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    default = torch.get_default_dtype()
    torch.set_default_dtype(llm_dtype)  # build a 13B LLM directly in bf16 (no fp32 copy)
    try:
        with torch.device(device):
            model = MiniGPT4(cfg)
    finally:
        torch.set_default_dtype(default)
    for part in (model.vision_model, model.qformer, model.language_projection):
        if part is not None:
            part.float()  # official: ln_vision, Q-Former, queries, projection in fp32
    if model.query_tokens is not None:
        model.query_tokens.data = model.query_tokens.data.float()
    if device.type == "cuda":
        for m in model.vision_model.modules():  # official frozen ViT: Linear/Conv weights in fp16
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.half()
    set_trainable(model, ("language_projection",))
    return model, tok


def make_step(model, objective, instruction, pixels, features, answers):
    module = TrainingModule(model, objective)
    opt = torch.optim.AdamW(param_groups(module, 0.05), lr=1e-5)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if pixels.device.type == "cuda"
                else torch.autocast("cpu", enabled=False))

    def step(cached: bool) -> None:
        with autocast:
            loss = module(answers, instruction, features=features) if cached else module(answers, instruction,
                                                                                          pixel_values=pixels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def timed(step, cached: bool, steps: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step(cached)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def run(size: str, stage: str, batch: int, rounds: int, steps: int, tokenizer_file: Path) -> dict:
    device = torch.device("cuda" if size != "tiny" else "cpu")
    model, tok = build(size, device, tokenizer_file)
    s = model.config.vision.image_size
    pixels = torch.randn(batch, 3, s, s, device=device)
    features = projection_inputs(model, pixels).float()
    stage1 = stage == "stage1"
    objective = Objective(tok, "\n" if stage1 else "###", 32 if stage1 else 160,
                          None if stage1 else stage2_instructions(model.config.template))
    instruction = None if stage1 else objective.instructions[0]
    answers = [CAPTION if stage1 else ANSWER] * batch
    step = make_step(model, objective, instruction, pixels, features, answers)
    for cached in (False, True):  # warm-up
        timed(step, cached, 2, device)
    times = {False: [], True: []}
    for _ in range(rounds):
        for cached in (False, True):
            times[cached].append(timed(step, cached, steps, device))
    target = min(len(tok.encode(answers[0] + objective.end_sym)), objective.max_txt_len)
    positions = 1 + model.config.num_image_tokens + target + (
        0 if stage1 else sum(len(tok.encode(p)) for p in instruction.split("<ImageHere>")))
    peak = peak_flops(device)
    out = {"size": size, "stage": stage, "batch": batch, "device": torch.cuda.get_device_name() if device.type == "cuda"
           else f"cpu ({torch.get_num_threads()} threads)", "llm_positions": positions}
    for cached in (False, True):
        sps = batch / statistics.median(times[cached])
        key = "cached" if cached else "on_the_fly"
        out[f"{key}_samples_per_s"] = round(sps, 2)
        util = mfu(sps, flops_per_sample(model, positions, cached_features=cached), peak)
        if util is not None:
            out[f"{key}_mfu"] = round(util, 3)
    out["speedup_cached_vs_on_the_fly"] = round(out["cached_samples_per_s"] / out["on_the_fly_samples_per_s"], 2)
    if device.type == "cuda":
        out["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=("tiny", "7b", "13b"), default="tiny")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1 = steadiest on a shared machine)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer.model (default: the fixtures' tiny one, or a "
                   "LLaMA tokenizer for full size)")
    args = p.parse_args()
    tokenizer = args.tokenizer or ROOT.parent / "shared/fixtures/reference/checkpoints/vicuna-tiny/tokenizer.model"
    if args.size != "tiny" and not torch.cuda.is_available():
        print("full-size runs need a CUDA GPU", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    runs = [("stage1", 64 if args.size != "tiny" else 32), ("stage2", 12)]
    results = [run(args.size, stage, batch, args.rounds, args.steps, tokenizer) for stage, batch in runs]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
