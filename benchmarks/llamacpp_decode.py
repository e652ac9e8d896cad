"""torch fp32/bf16 vs llama.cpp f16/Q8_0/Q4_K_M: decode tok/s and time to first token, side by side.

    .venv/bin/python benchmarks/llamacpp_decode.py [--hidden 1024 --layers 8 --prompt 256 --new 48]

A random LLaMA (vocab 32,000; LLaMA's MLP ratio) is written as a model folder's ``llm/`` and converted
with engine.store.gguf_convert; both back-ends are fed the same random prompt embeddings (the engine's
embedding input) and decode greedily with a KV cache, with ``--threads`` threads (a fixed count, not the
engine's tuner). "bound" = memory bandwidth measured with as many threads / bytes of weights read per
token (every weight but the input-embedding table, of which a step reads one row); "of bound" =
measured decode / bound.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.store import gguf_convert  # noqa: E402
from engine.minigpt4.llamacpp_backend import LlamaCppDecoder, read_embedding_table  # noqa: E402
from engine.minigpt4.thread_tuner import usable_cores  # noqa: E402


def bandwidth_bytes_per_second(size: int = 1 << 29) -> float:
    """Read bandwidth with torch's threads (a 512 MiB sum, best of 5): what decoding can reach."""
    a = torch.ones(size // 4, dtype=torch.float32)
    a.sum()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t)
    return size / best


def weight_bytes_read(gguf_file: Path) -> int:
    """Bytes of the GGUF's tensors a decoding step reads: all but token_embd (we feed embeddings)."""
    import gguf

    return sum(int(t.n_bytes) for t in gguf.GGUFReader(str(gguf_file)).tensors if t.name != "token_embd.weight")


def make_llm(folder: Path, hidden: int, layers: int, vocab: int = 32000) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.store.locations import demo_model_dir

    tok = demo_model_dir() / "tokenizer.model"
    cfg = LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=hidden // 64,
                      intermediate_size=(hidden * 11008 // 4096 + 255) // 256 * 256, vocab_size=vocab,
                      max_position_embeddings=2048, rms_norm_eps=1e-6)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.float16)
    model.save_pretrained(str(folder / "llm"), safe_serialization=True)
    shutil.copyfile(tok, folder / "tokenizer.model")
    return folder


@torch.inference_mode()
def run_torch(folder: Path, dtype: torch.dtype, prompt: torch.Tensor, new: int) -> tuple[float, float, list[int]]:
    from transformers import DynamicCache, LlamaForCausalLM

    lm = LlamaForCausalLM.from_pretrained(str(folder / "llm"), dtype=dtype).eval()
    table = lm.get_input_embeddings()
    start = time.perf_counter()
    cache = DynamicCache()
    out = lm(inputs_embeds=prompt[None].to(dtype), past_key_values=cache, use_cache=True)
    ids = [int(out.logits[0, -1].argmax())]
    first = time.perf_counter() - start
    t = time.perf_counter()
    for _ in range(new - 1):
        out = lm(inputs_embeds=table(torch.tensor([[ids[-1]]])), past_key_values=cache, use_cache=True)
        ids.append(int(out.logits[0, -1].argmax()))
    return first, (new - 1) / (time.perf_counter() - t), ids


def run_llamacpp(folder: Path, precision: str, prompt: torch.Tensor, new: int, threads: int) -> tuple[float, float, list[int]]:
    table = read_embedding_table(folder / "llm")
    decoder = LlamaCppDecoder(gguf_convert.gguf_path(folder, precision), table, n_ctx=1024, threads=threads)
    decoder.reset()
    start = time.perf_counter()
    ids = [int(np.argmax(decoder.feed(prompt)))]
    first = time.perf_counter() - start
    t = time.perf_counter()
    for _ in range(new - 1):
        ids.append(int(np.argmax(decoder.feed(table(torch.tensor([ids[-1]]))))))
    rate = (new - 1) / (time.perf_counter() - t)
    decoder.close()
    return first, rate, ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--new", type=int, default=48)
    parser.add_argument("--threads", type=int, default=usable_cores(),
                        help="for torch, llama.cpp and the bandwidth measurement alike (default: the physical cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bw = bandwidth_bytes_per_second()
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_llm(Path(tmp), args.hidden, args.layers)
        for precision in ("f16", "q8_0", "q4_k_m"):
            gguf_convert.convert(folder, precision)
        params = sum(t.numel() for t in __import__("safetensors.torch").torch.load_file(
            str(next((folder / "llm").glob("*.safetensors")))).values())
        read = params - 32000 * args.hidden  # a step reads one row of the input embeddings, not the table
        torch.manual_seed(1)
        prompt = torch.randn(args.prompt, args.hidden) * 0.02
        rows = []
        for name, run, bytes_per_token in (
                ("torch fp32", lambda: run_torch(folder, torch.float32, prompt, args.new), read * 4),
                ("torch bf16", lambda: run_torch(folder, torch.bfloat16, prompt, args.new), read * 2),
                *((f"llama.cpp {p}", (lambda p=p: run_llamacpp(folder, p, prompt, args.new, args.threads)),
                   weight_bytes_read(gguf_convert.gguf_path(folder, p))) for p in ("f16", "q8_0", "q4_k_m"))):
            first, rate, ids = run()
            rows.append((name, first, rate, bytes_per_token, ids))
    ref_rate = rows[1][2]
    print(f"{params / 1e6:.0f} M params, hidden {args.hidden}, {args.layers} layers, vocab 32000, prompt {args.prompt}, "
          f"{args.new} new tokens; bandwidth {bw / 1e9:.1f} GB/s; {torch.get_num_threads()} torch threads")
    print("| back-end | time to first token (s) | decode tok/s | vs torch bf16 | bound tok/s | of bound | greedy ids as fp32 |")
    print("|---|---|---|---|---|---|---|")
    for name, first, rate, nbytes, ids in rows:
        agree = sum(a == b for a, b in zip(ids, rows[0][4]))
        bound = bw / nbytes
        print(f"| {name} | {first:.3f} | {rate:.1f} | {rate / ref_rate:.2f}x | {bound:.1f} | {rate / bound:.0%} | {agree}/{len(ids)} |")


if __name__ == "__main__":
    main()
