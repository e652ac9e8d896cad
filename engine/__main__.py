"""``python -m engine convert|describe|bench|models``: the engine without the app (whisper-style CLI)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from engine.protocol import Quantization


def _convert(args: argparse.Namespace) -> int:
    from engine.minigpt4.converter import CheckpointError, convert_official
    from engine.minigpt4.config import PRESETS, MiniGPT4Config

    config = MiniGPT4Config.load(Path(args.config)) if args.config else PRESETS[args.preset]()
    try:
        report = convert_official(Path(args.out), config=config, eva_vit=args.eva_vit, blip2=args.blip2,
                                  blip2_hf=args.blip2_hf, projection=Path(args.projection),
                                  llm_dir=Path(args.llm_dir), overwrite=args.overwrite)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"model written to {args.out}")
    return 0


def _default_model() -> str | None:
    """The model the app would load (engine.store.model_choice), said on stderr."""
    from engine.store.model_choice import choose_from_settings

    choice = choose_from_settings()
    if choice.notice:
        print(f"note: {choice.notice}", file=sys.stderr)
    if choice.path is None:
        return None
    demo = " (it only knows coloured shapes)" if choice.demo else ""
    print(f"note: using {choice.title}{demo}, {choice.path}", file=sys.stderr)
    return str(choice.path)


def _describe(args: argparse.Namespace) -> int:
    from engine.minigpt4.describer import Describer
    from engine.image_io import ImageError, model_input_image, open_image
    from engine.minigpt4.loading import ModelLoadError, load_model
    from engine.protocol import Describe, GenerationSettings, ImageInput, Turn

    try:  # the picture first: a bad file is refused before the model is loaded, and decoded once
        picture = open_image(args.image)
    except ImageError as exc:
        print(f"error ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    model = args.model or _default_model()
    if model is None:
        print("error: no model is set up; pass --model DIR or run: lumen models download vicuna0-7b", file=sys.stderr)
        return 1
    try:
        loaded = load_model(model, device=args.device, dtype=args.dtype, quantization=Quantization(args.quantization))
    except ModelLoadError as exc:
        print(f"error ({exc.kind.value}): {exc}", file=sys.stderr)
        return 1
    if "cpu_slow" in loaded.warnings:
        print("note: no GPU found; running on the CPU, which is slow", file=sys.stderr)
    if "memory_unknown" in loaded.warnings:
        print("note: free memory could not be read, so it was not checked; "
              f"{str(loaded.dtype).removeprefix('torch.')} chosen to be safe", file=sys.stderr)
    describer = Describer(loaded, template=args.template)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, seed=args.seed)
    if args.greedy:
        settings = GenerationSettings.greedy(max_new_tokens=args.max_new_tokens)
    side = loaded.config.vision.image_size  # the model's view: identical pixels to a full-size decode
    image = ImageInput("image", model_input_image(picture, side).tobytes(), "rgb", (side, side))
    del picture
    history: list[Turn] = []
    for n, question in enumerate(args.question or ["Describe this image in detail."]):
        request = Describe(n, "cli", question, tuple(history), ("image",) if n == 0 else (), (image,), settings)
        if len(args.question or []) > 1:
            print(f"> {question}")
        reply, _ = describer.describe(request, on_delta=lambda t: print(t, end="", flush=True))
        print()
        history += [Turn("user", question, request.new_image_ids), Turn("assistant", reply.text)]
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "models":
        from engine.store.model_cli import main as models_main

        return models_main(argv[1:])
    if argv and argv[0] == "bench":
        from engine.minigpt4.bench import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    conv = sub.add_parser("convert", help="official MiniGPT-4 files -> a Lumen model folder")
    conv.add_argument("--preset", default="vicuna0-7b", help="vicuna0-7b, vicuna0-13b, llama2-7b, tiny, tiny-noqformer")
    conv.add_argument("--config", help="a MiniGPT4Config JSON instead of a preset")
    conv.add_argument("--eva-vit", help="eva_vit_g.pth")
    conv.add_argument("--blip2", help="blip2_pretrained_flant5xxl.pth (Q-Former presets)")
    conv.add_argument("--blip2-hf", help="HF BLIP-2 weights (folder or .safetensors) instead of --eva-vit/--blip2")
    conv.add_argument("--projection", required=True, help="pretrained_minigpt4*.pth")
    conv.add_argument("--llm-dir", required=True, help="Vicuna / Llama-2 Hugging Face folder")
    conv.add_argument("--out", required=True)
    conv.add_argument("--overwrite", action="store_true")

    desc = sub.add_parser("describe", help="describe an image, streaming to stdout")
    desc.add_argument("image")
    desc.add_argument("-q", "--question", action="append", help="repeat for follow-up questions")
    desc.add_argument("--model", help="a Lumen model folder (default: the one the app uses)")
    desc.add_argument("--device", default="auto")
    desc.add_argument("--dtype", default="auto")
    desc.add_argument("--quantization", default="none", choices=[q.value for q in Quantization])
    desc.add_argument("--template", default=None, help="override: vicuna0, vicuna0_april2023, llama2")
    desc.add_argument("--max-new-tokens", type=int, default=300)
    desc.add_argument("--greedy", action="store_true")
    desc.add_argument("--seed", type=int)
    sub.add_parser("bench", help="latency benchmark (see python -m engine bench --help)")
    sub.add_parser("models", help="model manager (see python -m engine models --help)")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return {"convert": _convert, "describe": _describe}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
