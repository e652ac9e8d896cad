"""``lumen models list|download|import|verify|remove|quantize|gguf`` (also ``python -m engine models ...``).

``download``, ``verify`` and ``remove`` also take a speech model id (``whisper-small`` ...): the
Whisper models for spoken questions (engine.store.speech_models); ``list`` shows them after the MiniGPT-4 ones.

Plain, screen-reader friendly output: one fact per line, progress as whole percentages on stderr
every 5 %, no bars drawn with characters. Exit status 0 = done, 1 = failed, 2 = bad usage,
130 = cancelled with Ctrl+C (partial downloads are kept and resumed next time).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from engine.protocol import Quantization
from engine.store.catalogue import BUNDLED_SPEECH, CATALOGUE, SPEECH_CATALOGUE, get_model, get_speech_model, gpu_memory_bytes
from engine.store.downloads import DownloadError, FailureKind
from engine.store.hardware import describe_gpus, detect, gigabytes, recommend
from engine.store.core import SetupProgress
from engine.store.model_store import ModelStore
from engine.store.official_files import find_official_files
from engine.store.speech_models import SpeechModelStore

SPEECH_IDS = [s.model_id for s in SPEECH_CATALOGUE]

MISSING_WORDS = {
    "eva": "the vision encoder eva_vit_g.pth",
    "qformer": "the BLIP-2 Q-Former blip2_pretrained_flant5xxl.pth",
    "projection": "the MiniGPT-4 projection checkpoint (a .pth file with minigpt4 in its name)",
    "llm": "the language model folder (config.json, tokenizer.model and weight files)",
}
PRECISION_WORDS = {Quantization.NONE: "full precision", Quantization.INT8: "8-bit (slower)", Quantization.NF4: "4-bit"}
FAILURE_WORDS = {
    FailureKind.CANCELLED: "Cancelled. Run the same command again to continue where it stopped.",
    FailureKind.NETWORK: "The connection kept failing. Run the same command again to resume.",
    FailureKind.HTTP: "The server refused the file.",
    FailureKind.AUTH: "Access refused. For Llama 2, accept Meta's licence on the model page and log in "
    "with 'hf auth login' (or pass --token).",
    FailureKind.CHECKSUM: "A downloaded file was damaged and has been deleted. Run the command again.",
    FailureKind.DISK_FULL: "Not enough free disk space.",
    FailureKind.BROWSER_ONLY: "The server sent a web page instead of the file.",
    FailureKind.MISSING: "Some official files are missing.",
    FailureKind.CONVERSION: "Converting the official files failed; see the log for details.",
    FailureKind.OFFLINE: "Offline mode is on (HF_HUB_OFFLINE=1). Unset it to download.",
}


def _progress_printer() -> object:
    last = {"key": None}

    def show(p: SetupProgress) -> None:
        if p.fraction is None:
            key = (p.stage, p.label)
            text = f"{p.stage} {p.label}"
        else:
            key = (p.stage, int(p.fraction * 20))
            text = f"{p.stage}: {int(p.fraction * 100)} percent ({gigabytes(p.done)} of {gigabytes(p.total)})"
        if key != last["key"]:
            last["key"] = key
            print(text, file=sys.stderr, flush=True)

    return show


def _in_use(store: ModelStore) -> dict:
    """The model the app would load (engine.store.model_choice: the settings' folder, else the model
    installed last, else the demo)."""
    from engine.store.model_choice import choose_from_settings

    choice = choose_from_settings(store)
    return {"path": str(choice.path) if choice.path else None, "title": choice.title, "origin": choice.origin.value,
            "demo": choice.demo, "notice": choice.notice, "installed_newest_first": list(choice.installed)}


def _in_use_line(in_use: dict) -> str:
    if in_use["path"] is None:
        return "Lumen uses: no model; none is set up."
    if in_use["demo"]:
        return (f"Lumen uses: the small demo model ({in_use['path']}). It only knows coloured shapes, not real screens "
                "or photos: it is not MiniGPT-4. Download a model below to replace it.")
    why = {"settings": "chosen in the settings", "store": "the model installed last"}[in_use["origin"]]
    return f"Lumen uses: {in_use['title']}, {why} ({in_use['path']})."


def _say_what_lumen_uses(store: ModelStore, out: Path) -> None:
    """After an install: whether Lumen will use the new model (the settings' folder wins)."""
    in_use = _in_use(store)
    if in_use["path"] and Path(in_use["path"]) == out:
        print("Lumen uses this model from its next start.")
    else:
        print(f"{_in_use_line(in_use)} To use the new model, empty the model folder in Lumen's Settings, Model.")


def cmd_list(store: ModelStore, args: argparse.Namespace) -> int:
    hardware = detect()
    in_use = _in_use(store)
    used = Path(in_use["path"]) if in_use["path"] else None
    rows = []
    for spec in CATALOGUE:
        rec = recommend(spec, hardware)
        rows.append(
            {
                "id": spec.model_id,
                "title": spec.title,
                "installed": store.is_installed(spec.model_id),
                "in_use": used == store.model_dir(spec.model_id),
                "download_bytes": spec.approx_download_bytes,
                "gpu_memory_bytes": {q.value: gpu_memory_bytes(spec, q) for q in Quantization},
                "recommended": {"device": rec.device, "precision": rec.precision, "fits": rec.fits},
            }
        )
    speech = SpeechModelStore(store.root)
    speech_rows = [
        {"id": s.model_id, "title": s.title, "repo": s.repo_id, "installed": speech.is_installed(s.model_id),
         "english_only": s.english_only, "download_bytes": s.approx_size_bytes, "memory_bytes": s.ram_bytes,
         "slowdown_vs_bundled": s.slowdown}
        for s in SPEECH_CATALOGUE
    ]
    if args.json:
        print(json.dumps({"gpus": describe_gpus(hardware.gpus), "in_use": in_use, "models": rows,
                          "speech_models": speech_rows}, indent=1))
        return 0
    print(f"Graphics cards: {describe_gpus(hardware.gpus)}")
    if in_use["notice"]:
        print(in_use["notice"])
    print(_in_use_line(in_use))
    for spec, row in zip(CATALOGUE, rows):
        mem = row["gpu_memory_bytes"]
        rec = row["recommended"]
        state = "Installed, used by Lumen" if row["in_use"] else "Installed" if row["installed"] else "Not installed"
        print(f"{spec.model_id}: {spec.title}. {state}.")
        print(f"  Download about {gigabytes(row['download_bytes'])}.")
        print(f"  GPU memory: full precision {gigabytes(mem['none'])}, 8-bit {gigabytes(mem['int8'])}, 4-bit {gigabytes(mem['nf4'])}.")
        if not rec["fits"]:
            where = "does not fit this computer"
        elif rec["device"] == "cpu":
            where = "processor only (slow: minutes per description)"
        else:
            where = f"{PRECISION_WORDS[rec['precision']]} on the graphics card"
        print(f"  Recommended here: {where}.")
    print("Speech recognition models for spoken questions (choose one in Settings, Speech):")
    print(f"bundled: {BUNDLED_SPEECH.title}. English only. {BUNDLED_SPEECH.summary}")
    for spec, row in zip(SPEECH_CATALOGUE, speech_rows):
        languages = "English only" if spec.english_only else "Many languages"
        print(f"{spec.model_id}: {spec.title}. {languages}. {'Installed' if row['installed'] else 'Not installed'}.")
        print(f"  Download about {gigabytes(spec.approx_size_bytes)}; memory about {gigabytes(spec.ram_bytes)}; "
              f"about {spec.slowdown:g} times the bundled model's time (OpenAI's graphics-card figures). {spec.summary}")
    return 0


def _fail(exc: DownloadError) -> int:
    print(f"Failed: {FAILURE_WORDS.get(exc.kind, exc.kind)}", file=sys.stderr)
    print(f"Details: {exc.detail}", file=sys.stderr)
    if exc.path and exc.kind in (FailureKind.AUTH, FailureKind.BROWSER_ONLY):
        print(f"Page: {exc.path}", file=sys.stderr)
    return 130 if exc.kind is FailureKind.CANCELLED else 1


def _run(job, cancel: threading.Event) -> int:  # type: ignore[no-untyped-def]
    try:
        job()
    except KeyboardInterrupt:
        cancel.set()
        print(FAILURE_WORDS[FailureKind.CANCELLED], file=sys.stderr)
        return 130
    except DownloadError as exc:
        return _fail(exc)
    return 0


def cmd_download(store: ModelStore, args: argparse.Namespace) -> int:
    cancel = threading.Event()
    show = _progress_printer()
    if args.model in SPEECH_IDS:
        speech = get_speech_model(args.model)

        def fetch_speech() -> None:
            out = SpeechModelStore(store.root).download(speech, show, cancel, endpoint=args.endpoint, token=args.token)
            print(f"Installed {speech.title} in {out}. Choose it in Settings, Speech.")

        return _run(fetch_speech, cancel)
    spec = get_model(args.model)

    def job() -> None:
        for extra in args.file or ():
            store.add_file(Path(extra))
        outcome = store.download(spec, show, cancel, endpoint=args.endpoint, token=args.token)
        if outcome.missing_by_hand:
            for f in outcome.missing_by_hand:
                print(f"{f.name} could not be downloaded automatically. Open {f.page_url} in a browser, "
                      f"save the file, then run: lumen models download {spec.model_id} --file PATH", file=sys.stderr)
            raise DownloadError(FailureKind.MISSING, ", ".join(f.name for f in outcome.missing_by_hand))
        out = store.install(spec, outcome.official, show, cancel)
        if not args.keep_downloads:
            store.discard_llm_download(spec)
        print(f"Installed {spec.title} in {out}")
        _say_what_lumen_uses(store, out)

    return _run(job, cancel)


def cmd_import(store: ModelStore, args: argparse.Namespace) -> int:
    if args.model in SPEECH_IDS:
        speech = get_speech_model(args.model)

        def add_speech() -> None:
            out = SpeechModelStore(store.root).import_folder(speech, Path(args.folder), _progress_printer())
            print(f"Installed {speech.title} in {out}. Choose it in Settings, Speech.")

        return _run(add_speech, threading.Event())
    found = find_official_files(Path(args.folder), args.model)
    if found.model_id is None:
        print("Could not tell which model these files are for. Pass --model (one of: "
              + ", ".join(s.model_id for s in CATALOGUE) + ").", file=sys.stderr)
        return 2
    spec = get_model(found.model_id)
    missing = found.missing(spec)
    for key, path in (("eva", found.eva), ("qformer", found.qformer), ("projection", found.projection), ("llm", found.llm_dir)):
        if path is not None:
            print(f"Found {MISSING_WORDS[key]}: {path}")
    if missing:
        for key in missing:
            print(f"Missing: {MISSING_WORDS[key]}", file=sys.stderr)
        return 1
    cancel = threading.Event()

    def job() -> None:
        out = store.install(spec, found, _progress_printer(), cancel, preset=args.preset)
        print(f"Installed in {out}")
        _say_what_lumen_uses(store, out)

    return _run(job, cancel)


def cmd_verify(store: ModelStore, args: argparse.Namespace) -> int:
    owner = SpeechModelStore(store.root) if args.model in SPEECH_IDS else store
    report = owner.verify(args.model, _progress_printer())
    if report.ok:
        print(f"{args.model}: all {report.checked} files are intact.")
        return 0
    for problem in report.problems:
        print(f"{args.model}: {problem}")
    return 1


def cmd_quantize(store: ModelStore, args: argparse.Namespace) -> int:
    cancel = threading.Event()
    return _run(lambda: print(f"Stored {store.prequantize(args.model, args.quantization, args.device, _progress_printer(), cancel)}"), cancel)


def cmd_gguf(store: ModelStore, args: argparse.Namespace) -> int:
    from engine.store.gguf_convert import estimate_bytes
    from engine.store.memory import llm_params
    from engine.store.model_folder import LLM_DIR, CheckpointError, read_llm_json

    cancel = threading.Event()
    try:
        params = sum(llm_params(read_llm_json(store.model_dir(args.model) / LLM_DIR)))
        print(f"Memory for the language model at {args.precision}: about {gigabytes(estimate_bytes(params, args.precision))}.")
    except CheckpointError:
        pass  # not installed, or a damaged folder: convert_gguf says so
    return _run(lambda: print(f"Stored {store.convert_gguf(args.model, args.precision, _progress_printer(), cancel)}"), cancel)


def cmd_remove(store: ModelStore, args: argparse.Namespace) -> int:
    if args.model in SPEECH_IDS:
        removed = SpeechModelStore(store.root).remove(args.model)
    else:
        removed = store.remove(args.model, downloads_too=args.downloads)
    print(f"Removed {len(removed)} item(s)." if removed else f"{args.model} is not installed.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lumen models", description="Set up MiniGPT-4 and speech recognition models for Lumen.")
    parser.add_argument("--root", type=Path, help="model store folder (default: LUMEN_MODELS_DIR or the user data folder)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="show the models, their sizes and what fits this computer")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("download", help="download the official files and convert them (or a speech model)")
    p.add_argument("model", choices=[s.model_id for s in CATALOGUE] + SPEECH_IDS)
    p.add_argument("--token", help="Hugging Face token (default: the one saved by 'hf auth login')")
    p.add_argument("--endpoint", help="Hugging Face endpoint (a mirror)")
    p.add_argument("--file", action="append", type=Path, help="an official file you fetched with a browser")
    p.add_argument("--keep-downloads", action="store_true", help="keep the downloaded language model after conversion")
    p = sub.add_parser("import", help="convert official files you already have (or add a faster-whisper folder)")
    p.add_argument("folder")
    p.add_argument("--model", choices=[s.model_id for s in CATALOGUE] + SPEECH_IDS)
    p.add_argument("--preset", help=argparse.SUPPRESS)  # engine.minigpt4.config preset override (tiny test models)
    p = sub.add_parser("quantize", help="store a pre-quantised copy so loading never quantises at start-up")
    p.add_argument("model")
    p.add_argument("quantization", choices=["nf4", "int8"])
    p.add_argument("--device", default="auto", help="where to quantise (auto: the GPU if there is one)")
    p = sub.add_parser("gguf", help="convert the language model for llama.cpp (any CPU or GPU; q4_k_m is 4-bit)")
    p.add_argument("model")
    p.add_argument("precision", choices=["f32", "f16", "q8_0", "q4_k_m"])
    for name, text in (("verify", "re-check every file of an installed model"), ("remove", "delete an installed model")):
        p = sub.add_parser(name, help=text)
        p.add_argument("model")
        if name == "remove":
            p.add_argument("--downloads", action="store_true", help="also delete the downloaded official files")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    store = ModelStore(args.root)
    commands = {"list": cmd_list, "download": cmd_download, "import": cmd_import, "verify": cmd_verify, "remove": cmd_remove,
                "quantize": cmd_quantize, "gguf": cmd_gguf}
    return commands[args.command](store, args)
