"""Latency benchmark of a preset with random weights: load time, time to first token, decode tokens/s,
peak memory, and the fraction of the memory-bandwidth bound reached while decoding.

Full size needs a GPU (``--preset vicuna0-7b --device cuda``); on the CPU use ``--preset tiny``.
Prints a table and one JSON line. The model directory is written once under ``--workdir`` and reused.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from engine.minigpt4.config import PRESETS, MiniGPT4Config
from engine.protocol import Describe, GenerationSettings, ImageInput, Quantization

# Peak memory bandwidth in GB/s by GPU name fragment (docs/performance.md section 3).
PEAK_BANDWIDTH = {"H200": 4800, "H100 SXM": 3350, "H100 80GB HBM3": 3350, "H100 PCIe": 2000, "H100": 3350,
                  "A100-SXM4-80GB": 2039, "A100": 1555, "RTX 4090": 1008, "RTX 3090": 936, "L4": 300}


def make_random_model_dir(preset: str | MiniGPT4Config, out: Path, tokenizer_file: Path | None,
                          seed: int = 0) -> Path:
    """A full model directory with random weights (LLM in fp16, as released checkpoints are), for a preset
    name or a config of its own."""
    from engine.minigpt4.converter import save_model_dir
    from engine.minigpt4.modeling import MiniGPT4

    if (out / "lumen_model.json").exists():
        return out
    config = PRESETS[preset]() if isinstance(preset, str) else preset
    tok = tokenizer_file or _default_tokenizer()
    from engine.minigpt4.tokenizer import Tokenizer

    config = replace(config, llm={**config.llm, "vocab_size": Tokenizer(tok).vocab_size})
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = MiniGPT4(config)
    model.language_model.to(torch.float16)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model_dir(model, config, tok, tmp, notes="random weights for benchmarking")
    tmp.rename(out)
    del model
    return out


def _default_tokenizer() -> Path:
    from engine.store.locations import demo_model_dir, resources_dir
    from engine.store.model_folder import TOKENIZER_FILE

    demo = demo_model_dir()
    shared = resources_dir().parents[1] / "shared" / "fixtures" / "reference" / "checkpoints" / "vicuna-tiny"
    for candidate in ((demo / TOKENIZER_FILE) if demo else None, shared / TOKENIZER_FILE):
        if candidate is not None and candidate.is_file():
            return candidate
    raise SystemExit("no tokenizer.model found: pass --tokenizer")


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def run(args: argparse.Namespace) -> dict:
    from engine.minigpt4.describer import Describer
    from engine.minigpt4.loading import load_model

    workdir = Path(args.workdir or tempfile.gettempdir()) / f"lumen-bench-{args.preset}"
    model_dir = make_random_model_dir(args.preset, workdir, Path(args.tokenizer) if args.tokenizer else None)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    loaded = load_model(model_dir, device=args.device, dtype=args.dtype, quantization=Quantization(args.quantization))
    load_s = time.perf_counter() - start
    describer = Describer(loaded, static_cache=args.static_cache)
    buf = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((640, 480)).save(buf, format="PNG")
    image = ImageInput("bench", buf.getvalue())
    settings = GenerationSettings.greedy(max_new_tokens=args.new_tokens, stop_on_template=False)
    ttft, decode, total = [], [], []
    for i in range(args.warmup + args.repeats):
        request = Describe(i, f"bench-{i}", "Describe this image in detail.", (), ("bench",), (image,), settings)
        _sync(loaded.device)
        reply, stats = describer.describe(request)
        _sync(loaded.device)
        if i < args.warmup:
            continue
        ttft.append(stats.first_token_seconds)
        total.append(stats.total_seconds)
        decode.append((stats.new_tokens - 1) / max(stats.total_seconds - stats.first_token_seconds, 1e-9))
    tok_s = statistics.median(decode)
    llm_bytes = sum(p.numel() * p.element_size() for p in loaded.model.language_model.parameters())
    name = torch.cuda.get_device_name(loaded.device) if loaded.device.type == "cuda" else "cpu"
    peak_bw = next((bw for key, bw in PEAK_BANDWIDTH.items() if key in name), None)
    return {
        "preset": args.preset, "device": name, "dtype": str(loaded.dtype).removeprefix("torch."),
        "quantization": args.quantization, "load_s": round(load_s, 3),
        "time_to_first_token_ms": round(1000 * statistics.median(ttft), 2),
        "decode_tokens_per_s": round(tok_s, 1), "new_tokens": args.new_tokens,
        "peak_memory_gb": round(peak_memory_bytes(loaded.device) / 1e9, 3),
        "llm_weight_gb": round(llm_bytes / 1e9, 3),
        "bandwidth_fraction": round(tok_s * llm_bytes / (peak_bw * 1e9), 3) if peak_bw else None,
        "static_cache": args.static_cache, "repeats": args.repeats, "torch": torch.__version__,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine bench", description=__doc__)
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--quantization", default="none", choices=[q.value for q in Quantization])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--static-cache", action="store_true",
                        help="static KV cache (transformers then compiles the decoding step on a GPU)")
    parser.add_argument("--workdir", help="where the random-weight model folder is kept (default: temp dir)")
    parser.add_argument("--tokenizer", help="a LLaMA tokenizer.model (default: the demo model's)")
    args = parser.parse_args(argv)
    result = run(args)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
