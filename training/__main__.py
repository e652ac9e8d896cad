"""``python -m training stage1|stage2|stage2-paper|prepare|cache|export|curate|verify|demo ... --field=value``.

Multi-GPU / multi-node: ``accelerate launch --multi_gpu --num_processes N ... -m training stage1 ...``
(plain DDP; the exact launch lines are in training/README.md).
"""

from __future__ import annotations

import argparse
import logging
import sys

from training import config as config_mod


def _train(args: argparse.Namespace) -> int:
    from training.recipe import train

    cfg = config_mod.from_args(args.command, args)
    result = train(cfg)
    logging.getLogger("training").info("finished: %s", result)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from training.prepare import prepare_shards

    report = prepare_shards(args.source, args.out, image_size=args.image_size, resize_mode=args.resize_mode,
                            samples_per_shard=args.samples_per_shard)
    logging.getLogger("training").info("%s", report)
    return 0


def _cache(args: argparse.Namespace) -> int:
    from training.features import cache_from_config

    cfg = config_mod.from_args(args.stage, args)
    cache_from_config(cfg, args.out, views=args.views, limit=args.limit, shard_size=args.shard_size)
    return 0


def _export(args: argparse.Namespace) -> int:
    from training import checkpointing as ckpt

    if args.format == "official":
        out = ckpt.export_official(args.checkpoint, args.out)
    else:
        out = ckpt.export_model_dir(args.checkpoint, args.out)
    logging.getLogger("training").info("exported %s -> %s", args.checkpoint, out)
    return 0


def _curate(args: argparse.Namespace) -> int:
    from training.curate import main as curate_main

    return curate_main(args)


def _verify(args: argparse.Namespace) -> int:
    from training.curate import apply_verification

    summary = apply_verification(args.out)
    logging.getLogger("training").info("filter_cap.json written: %s", summary)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from training.demo import build_demo

    build_demo(args.out, work_dir=args.work_dir, stage1_steps=args.stage1_steps, stage2_steps=args.stage2_steps,
               train_size=args.train_size, test_size=args.test_size, seed=args.seed)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description="Train MiniGPT-4 (both official stages).")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_text in (("stage1", "stage 1: image-text pairs from webdataset shards (official preset)"),
                            ("stage2", "stage 2: the curated aligned set (official preset, 1000 steps)"),
                            ("stage2-paper", "stage 2 with the paper's 400 steps")):
        config_mod.add_arguments(sub.add_parser(name, help=help_text))
    pr = sub.add_parser("prepare", help="a folder of images (+ .txt captions) or a caption list -> webdataset shards")
    pr.add_argument("source", help="image folder, or a .json/.jsonl/.tsv list of {image, caption}")
    pr.add_argument("out", help="output folder for the shards")
    pr.add_argument("--image_size", type=int, default=224)
    pr.add_argument("--resize_mode", choices=("border", "center_crop", "keep"), default="border")
    pr.add_argument("--samples_per_shard", type=int, default=10000)
    ca = sub.add_parser("cache", help="precompute frozen Q-Former outputs for a run config (resumable)")
    ca.add_argument("stage", choices=("stage1", "stage2"))
    ca.add_argument("out", help="the cache folder (an unfinished one is resumed)")
    ca.add_argument("--shard_size", type=int, default=4096, help="samples per shard file")
    ca.add_argument("--views", type=int, default=1)
    ca.add_argument("--limit", type=int, default=0, help="stage 1: samples to cache (0 = one pass over all shards)")
    config_mod.add_arguments(ca)
    ex = sub.add_parser("export", help="a training checkpoint -> an engine model folder or the official .pth")
    ex.add_argument("checkpoint", help="a checkpoint folder (<output_dir>/checkpoint-<step>)")
    ex.add_argument("out", help="engine: the model folder to write; official: the .pth file")
    ex.add_argument("--format", choices=("engine", "official"), default="engine",
                    help="official: {'model': {'llama_proj.weight', 'llama_proj.bias'}} for MiniGPT-4's ckpt:")
    from training.curate import add_arguments as curate_args

    curate_args(sub.add_parser("curate", help="stage-2 data curation as in the paper"))
    ve = sub.add_parser("verify", help="human_verification.csv (approved/edited/rejected) -> filter_cap.json")
    ve.add_argument("out", help="the curate output folder")
    de = sub.add_parser("demo", help="train the tiny demo model on a synthetic set and export it")
    de.add_argument("--out", default="resources/demo_model")
    de.add_argument("--work_dir", default="runs/demo")
    de.add_argument("--stage1_steps", type=int, default=1500)
    de.add_argument("--stage2_steps", type=int, default=200)
    de.add_argument("--train_size", type=int, default=2000)
    de.add_argument("--test_size", type=int, default=300)
    de.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    handlers = {"stage1": _train, "stage2": _train, "stage2-paper": _train, "prepare": _prepare,
                "cache": _cache, "export": _export, "curate": _curate, "verify": _verify, "demo": _demo}
    from engine.minigpt4.converter import CheckpointError

    try:
        return handlers[args.command](args)
    except (config_mod.ConfigError, CheckpointError, ImportError, FileNotFoundError, ValueError) as exc:
        logging.getLogger("training").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
