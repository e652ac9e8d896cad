"""llama.cpp decoding with other programs busy: fixed thread counts against the engine's tuner.

    .venv/bin/python benchmarks/llamacpp_contention.py [--hidden 1024 --layers 8 --precision q4_k_m]

The same random LLaMA as llamacpp_decode.py, converted to GGUF. For 0, 1, ... busy processes (each a
Python loop spinning on one core, standing in for a browser tab, a virus scan or a build), each
configuration (every fixed count from 1 to the usable cores, and the tuner of
engine.minigpt4.thread_tuner) decodes ``--answers`` answers of ``--new`` tokens greedily after a
128-position prompt, in ``--rounds`` rounds in which the configurations take turns; the tuner's
decoder is kept across the rounds, as in the app. Printed: decode tokens/s of the median answer, as a
Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.llamacpp_decode import make_llm  # noqa: E402
from engine.minigpt4.llamacpp_backend import LlamaCppDecoder, read_embedding_table  # noqa: E402
from engine.minigpt4.thread_tuner import usable_cores  # noqa: E402
from engine.store import gguf_convert  # noqa: E402


def answers(decoder: LlamaCppDecoder, table, count: int, new: int) -> list[float]:
    torch.manual_seed(1)
    prompt = torch.randn(128, table.embedding_dim) * 0.02
    rates = []
    for _ in range(count):
        decoder.reset()
        ids = [int(np.argmax(decoder.feed(prompt)))]
        start = time.perf_counter()
        for _ in range(new - 1):
            ids.append(int(np.argmax(decoder.feed(table(torch.tensor([ids[-1]]))))))
        rates.append((new - 1) / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--precision", default="q4_k_m")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--answers", type=int, default=2, help="per configuration and round")
    parser.add_argument("--new", type=int, default=128)
    args = parser.parse_args()
    cores = usable_cores()
    configs = [str(n) for n in range(1, cores + 1)] + ["tuned"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_llm(Path(tmp), args.hidden, args.layers)
        path = gguf_convert.convert(folder, args.precision)
        table = read_embedding_table(folder / "llm")
        for busy in range(cores):
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
            tuned = LlamaCppDecoder(path, table, n_ctx=1024)  # kept across the rounds, as in the app
            rates: dict[str, list[float]] = {c: [] for c in configs}
            try:
                time.sleep(0.5)
                for _ in range(args.rounds):  # the configurations alternate, so drifting load hits them alike
                    for config in configs:
                        decoder = tuned if config == "tuned" else LlamaCppDecoder(path, table, n_ctx=1024,
                                                                                  threads=int(config))
                        rates[config] += answers(decoder, table, args.answers, args.new)
                        if decoder is not tuned:
                            decoder.close()
                rows.append((busy, {c: (statistics.median(r), tuned.tuner.current if c == "tuned" else None)
                                    for c, r in rates.items()}))
            finally:
                tuned.close()
                for hog in hogs:
                    hog.kill()
    print(f"{args.precision}, hidden {args.hidden}, {args.layers} layers, {cores} usable cores, "
          f"{args.rounds} rounds x {args.answers} answers of {args.new} tokens per cell (median)")
    print("| busy processes | " + " | ".join(f"{c} thread{'s' if c != '1' else ''}" if c != "tuned" else "tuned (ends at)"
                                            for c in configs) + " |")
    print("|---" * (len(configs) + 1) + "|")
    for busy, row in rows:
        cells = [f"{row[c][0]:.1f}" + (f" ({row[c][1]})" if row[c][1] else "") for c in configs]
        print(f"| {busy} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
