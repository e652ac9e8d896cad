"""Decoding on the CPU with other programs busy: fixed thread counts against the engine's tuner.

    .venv/bin/python benchmarks/contention.py [--backend llamacpp|torch] [--hidden 1024 --layers 8 --precision q4_k_m]

A random LLaMA as in llamacpp_decode.py, with the demo tokenizer's vocabulary (so answers decode),
for llama.cpp converted to GGUF (``--precision``), for torch in fp32. Every answer goes through
``engine.minigpt4.generation.generate_reply`` as in the engine: greedy, ``--new`` tokens after a
128-position prompt, the KV cache emptied before each. For 0, 1, ... busy processes (each a Python
loop spinning on one core, standing in for a browser tab, a virus scan or a build), each
configuration (every fixed count from 1 to the usable cores, and the tuner of
engine.minigpt4.thread_tuner) decodes ``--answers`` answers per round, ``--rounds`` rounds in which
the configurations take turns; the tuner is kept across the rounds, as in the app. Printed: decode
tokens/s (first token to last) of the median answer, as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.llamacpp_decode import make_llm  # noqa: E402
from engine.minigpt4.generation import generate_reply  # noqa: E402
from engine.minigpt4.thread_tuner import ThreadTuner, usable_cores  # noqa: E402
from engine.minigpt4.tokenizer import Tokenizer  # noqa: E402
from engine.protocol import GenerationSettings  # noqa: E402
from engine.store import gguf_convert  # noqa: E402
from engine.store.locations import demo_model_dir  # noqa: E402


def decode_rate(reply) -> float:  # noqa: ANN001
    """Tokens per second from the first token to the end of the answer (just returned)."""
    return (len(reply.token_ids) - 1) / (time.perf_counter() - reply.first_token_seconds)


class Torch:
    """The torch path: fixed counts set once; "tuned" passes the engine's tuner to generate_reply."""

    def __init__(self, folder: Path) -> None:
        from transformers import LlamaForCausalLM

        self.model = SimpleNamespace(language_model=LlamaForCausalLM.from_pretrained(str(folder / "llm"), dtype=torch.float32).eval())
        self.tuner = ThreadTuner(usable_cores())

    def run(self, config: str, tokenizer: Tokenizer, prompt: torch.Tensor, settings: GenerationSettings) -> float:
        if config != "tuned":
            torch.set_num_threads(int(config))
        tuner = self.tuner if config == "tuned" else None
        return decode_rate(generate_reply(self.model, tokenizer, prompt[None], settings, threads=tuner))

    def settled(self) -> int:
        return self.tuner.current


class LlamaCpp:
    """The llama.cpp path: a decoder per fixed count; "tuned" is one decoder kept across the rounds."""

    def __init__(self, folder: Path, precision: str) -> None:
        from engine.minigpt4.llamacpp_backend import LlamaCppDecoder, read_embedding_table

        path, table = gguf_convert.convert(folder, precision), read_embedding_table(folder / "llm")
        self.make = lambda threads: LlamaCppDecoder(path, table, n_ctx=1024, threads=threads)
        self.tuned = self.make(None)

    def run(self, config: str, tokenizer: Tokenizer, prompt: torch.Tensor, settings: GenerationSettings) -> float:
        decoder = self.tuned if config == "tuned" else self.make(int(config))
        try:
            decoder.reset()
            return decode_rate(generate_reply(SimpleNamespace(language_model=decoder), tokenizer, prompt[None], settings))
        finally:
            if decoder is not self.tuned:
                decoder.close()

    def settled(self) -> int:
        return self.tuned.tuner.current


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("llamacpp", "torch"), default="llamacpp")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--precision", default="q4_k_m", help="llama.cpp: the GGUF precision")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--answers", type=int, default=2, help="per configuration and round")
    parser.add_argument("--new", type=int, default=128)
    args = parser.parse_args()
    cores = usable_cores()
    configs = [str(n) for n in range(1, cores + 1)] + ["tuned"]
    tokenizer = Tokenizer(demo_model_dir() / "tokenizer.model")
    settings = GenerationSettings.greedy(max_new_tokens=args.new, stop_on_template=False)
    torch.manual_seed(1)
    prompt = torch.randn(128, args.hidden) * 0.02
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_llm(Path(tmp), args.hidden, args.layers, vocab=tokenizer.vocab_size)
        bench = Torch(folder) if args.backend == "torch" else LlamaCpp(folder, args.precision)
        for busy in range(cores):
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
            rates: dict[str, list[float]] = {c: [] for c in configs}
            try:
                time.sleep(0.5)
                for _ in range(args.rounds):  # the configurations alternate, so drifting load hits them alike
                    for config in configs:
                        rates[config] += [bench.run(config, tokenizer, prompt, settings) for _ in range(args.answers)]
            finally:
                for hog in hogs:
                    hog.kill()
            rows.append((busy, {c: statistics.median(r) for c, r in rates.items()}, bench.settled()))
    what = f"llama.cpp {args.precision}" if args.backend == "llamacpp" else "torch fp32"
    print(f"{what}, hidden {args.hidden}, {args.layers} layers, vocab {tokenizer.vocab_size}, {cores} usable cores, "
          f"{args.rounds} rounds x {args.answers} answers of {args.new} tokens per cell (median)")
    print("| busy processes | " + " | ".join("tuned (ends at)" if c == "tuned" else f"{c} thread{'s' * (c != '1')}"
                                            for c in configs) + " |")
    print("|---" * (len(configs) + 1) + "|")
    for busy, row, settled in rows:
        print(f"| {busy} | " + " | ".join(f"{row[c]:.1f}" + (f" ({settled})" if c == "tuned" else "") for c in configs) + " |")


if __name__ == "__main__":
    main()
