"""Follow-up time to first token with and without KV-cache reuse, side by side, in both back-ends.

    .venv/bin/python benchmarks/kv_reuse.py [--hidden 1024 --layers 8 --answer 32 --repeats 3]

A random LLaMA (as benchmarks/llamacpp_decode.py, with the demo tokenizer's 600-piece vocabulary so
that its answers can be decoded and re-tokenised) answers a real conversation: the official Vicuna
template rendered by engine.minigpt4.prompts and tokenised per segment with that tokenizer, 32 random
image embeddings, a turn-1 answer of ``--answer`` greedy tokens (which fill the cache as in the app;
the conversation stores a fixed 120-word description as the answer), then a follow-up. The follow-up
runs through engine.minigpt4.generation's generate_reply twice per repeat: after turn 1 with the
cache kept, and from an empty cache; the table gives the best time to first token of each (after
one untimed warm-up) and the positions prefilled.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.llamacpp_decode import make_llm  # noqa: E402
from engine.store import gguf_convert  # noqa: E402
from engine.store.locations import demo_model_dir  # noqa: E402
from engine.minigpt4.generation import KvCache, generate_reply  # noqa: E402
from engine.minigpt4.llamacpp_backend import LlamaCppDecoder, read_embedding_table  # noqa: E402
from engine.minigpt4.prompts import TEMPLATES, build_prompt, split_on_images  # noqa: E402
from engine.protocol import GenerationSettings, Turn  # noqa: E402
from engine.minigpt4.tokenizer import Tokenizer  # noqa: E402

QUESTIONS = ("Describe this image in detail.", "What colour is the button at the top?")
# What turn 1 stores as its answer (a random model's own words are cut short by the official clean-up).
ANSWER = ("The image shows a desktop with a web browser open on a news page. At the top there is a dark blue "
          "bar with the site's name in white letters and a search field on the right. Below it, a large "
          "photograph shows a harbour at sunset, with several small boats and a lighthouse on the left. "
          "Under the photograph, a headline in bold black letters reads that the city will open a new "
          "ferry line next spring, followed by two short paragraphs of text. On the right side of the "
          "page there is a column of smaller articles, each with a thumbnail picture and a title. A "
          "green button labelled Subscribe is at the bottom right corner of the window.")


def context(table: torch.nn.Embedding, tok: Tokenizer, history: list[Turn], question: str, image: torch.Tensor,
            new_images: int) -> torch.Tensor:
    prompt = build_prompt(TEMPLATES["vicuna0"], history, question, new_images)
    segments = [tok.encode(s, add_bos=i == 0) for i, s in enumerate(split_on_images(prompt, 1))]
    parts = [table(torch.tensor(segments[0])), image.to(table.weight.dtype), table(torch.tensor(segments[1]))]
    return torch.cat(parts)[None]


def follow_up(model, table, tok, image, answer: int, kv: KvCache | None, reset) -> tuple[float, int, int, int]:  # noqa: ANN001
    """(seconds to the first token, positions reused, context positions, first token) of the follow-up."""
    reset()
    first = context(table, tok, [], QUESTIONS[0], image, 1)
    generate_reply(model, tok, first, GenerationSettings.greedy(max_new_tokens=answer, stop_on_template=False), kv=kv)
    history = [Turn("user", QUESTIONS[0], ("img",)), Turn("assistant", ANSWER)]
    embeds = context(table, tok, history, QUESTIONS[1], image, 0)
    if kv is None:
        reset()
    start = time.perf_counter()
    reply = generate_reply(model, tok, embeds, GenerationSettings.greedy(max_new_tokens=1, stop_on_template=False),
                           kv=kv)
    return reply.first_token_seconds - start, reply.reused_positions, reply.context_positions, reply.token_ids[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--answer", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tok = Tokenizer(demo_model_dir() / "tokenizer.model")
    torch.manual_seed(1)
    image = torch.randn(32, args.hidden) * 0.02
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_llm(Path(tmp), args.hidden, args.layers, tok.vocab_size)
        from transformers import LlamaForCausalLM

        backends = []
        for name, dtype in (("torch fp32", torch.float32), ("torch bf16", torch.bfloat16)):
            lm = LlamaForCausalLM.from_pretrained(str(folder / "llm"), dtype=dtype).eval()
            backends.append((name, SimpleNamespace(language_model=lm), lm.get_input_embeddings(), KvCache, lambda: None))
        for precision in ("f16", "q4_k_m"):
            gguf_convert.convert(folder, precision)
            decoder = LlamaCppDecoder(gguf_convert.gguf_path(folder, precision), read_embedding_table(folder / "llm"), 2048)
            backends.append((f"llama.cpp {precision}", SimpleNamespace(language_model=decoder), decoder.embed_tokens,
                             KvCache, decoder.reset))
        for name, model, table, make_kv, reset in backends:
            with torch.inference_mode():
                follow_up(model, table, tok, image, args.answer, make_kv(), reset)  # warm-up, not timed
                timed = {True: [], False: []}
                for _ in range(args.repeats):
                    for reuse in (True, False):
                        timed[reuse].append(follow_up(model, table, tok, image, args.answer, make_kv() if reuse else None,
                                                      reset))
            rows.append((name, min(t[0] for t in timed[True]), min(t[0] for t in timed[False]), timed[True][0],
                         timed[False][0]))
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
          f"threads; random LLaMA hidden {args.hidden}, {args.layers} layers, vocab {tok.vocab_size}; Vicuna template, 32 image "
          f"embeddings, turn-1 answer {args.answer} generated tokens; best of {args.repeats}; load average "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print("| back-end | follow-up context | prefilled with reuse | TTFT with reuse (s) | TTFT without (s) | "
          "with / without | same first token |")
    print("|---|---|---|---|---|---|---|")
    for name, with_reuse, without, (_, reused, length, tok_a), (_, _, _, tok_b) in rows:
        print(f"| {name} | {length} | {length - reused} | {with_reuse:.3f} | {without:.3f} | "
              f"{with_reuse / without:.0%} | {'yes' if tok_a == tok_b else 'no'} |")


if __name__ == "__main__":
    main()
