"""OCR backends side by side on synthetic UI screenshots, and what OCR grounding puts in the prompt.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/ocr_grounding.py [--repeat 3] [--json out.json]

Screens (tests/ocr_screens.py): PIL-drawn UIs in DejaVu Sans 12-16 px (dialog, form, two prose
columns, dark theme), two real Qt widgets grabbed offscreen, and a 1920x1080 desktop holding the
PIL windows. Every available backend reads every screen in the same run.

Per backend and screen:
* ``char acc``: 1 - Levenshtein / length of the true text, both in reading order; it counts
  recognition errors and reading-order errors together, as a listener would hear them.
* ``items``: share of the screen's text items (labels, buttons, lines) found verbatim anywhere.
* ``s/capture``: median wall time of ``engine.perception.ocr.read_text`` over ``--repeat`` runs (warm).
* ``load+first``: creating the backend and reading the first screen (cold).

Grounding (default backend). MiniGPT-4 sees a 224x224 image; it receives no text from the screen
unless grounding puts it in the prompt. We measure what reaches the prompt, not answer quality (a
random tiny model can't give honest answer-quality numbers, and real weights are not available here):
* ``off``: characters of screen text in the prompt (none) and items legible at 224x224, estimated by
  OCR of the capture downscaled to 224x224 (bicubic, as the model's preprocessing) and upscaled 4x
  for the OCR: an optimistic proxy for what the model could read from pixels alone.
* ``on``: items present in ``Describe.context`` (``format_grounding``, capped at 1500 characters)
  and the context's length in characters.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image  # noqa: E402

from engine.perception import ocr  # noqa: E402
from engine.perception.reading_order import ROW_SEPARATOR, format_grounding, reading_order  # noqa: E402
from tests import ocr_screens  # noqa: E402
from tests.ocr_screens import Screen, char_accuracy  # noqa: E402


def make_screens() -> list[Screen]:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # noqa: F841 - widgets need it alive
    return [*ocr_screens.pil_screens(), ocr_screens.qt_dialog(), ocr_screens.qt_settings_window(),
            ocr_screens.full_hd_desktop()]


def items_found(screen: Screen, text: str) -> float:
    haystack = " ".join(text.split())
    return sum(" ".join(item.split()) in haystack for item in screen.items) / len(screen.items)


def bench_backend(name: str, screens: list[Screen], repeat: int) -> dict:
    started = time.perf_counter()
    backend = ocr._FACTORIES[name]()  # a fresh instance: the cold cost is part of the result
    reader = lambda image: reading_order(backend.read(ocr._as_rgb(image)))  # noqa: E731
    reader(screens[0].image)
    cold = time.perf_counter() - started
    rows = []
    for screen in screens:
        times, lines = [], ()
        for _ in range(repeat):
            t0 = time.perf_counter()
            lines = reader(screen.image)
            times.append(time.perf_counter() - t0)
        text = " ".join(line.text for line in lines)
        rows.append({"screen": screen.name, "size": list(screen.image.size),
                     "char_accuracy": round(char_accuracy(text, screen.text), 4),
                     "items_found": round(items_found(screen, text), 4),
                     "seconds": round(statistics.median(times), 3)})
    return {"backend": name, "load_and_first_seconds": round(cold, 2), "screens": rows}


def bench_grounding(name: str, screens: list[Screen]) -> list[dict]:
    rows = []
    for screen in screens:
        context = format_grounding(ocr.read_text(screen.image, backend=name))
        small = screen.image.resize((224, 224), Image.Resampling.BICUBIC)
        legible = ocr.read_text(small.resize((896, 896), Image.Resampling.BICUBIC), backend=name)
        rows.append({"screen": screen.name,
                     "off_prompt_chars": 0,
                     "off_items_legible_at_224": round(items_found(screen, " ".join(l.text for l in legible)), 4),
                     "on_items_in_prompt": round(items_found(screen, context.replace(ROW_SEPARATOR, " ")), 4),
                     "on_prompt_chars": len(context)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    screens = make_screens()
    backends = ocr.available_backends()
    if not backends:
        sys.exit("no OCR backend available")
    results = [bench_backend(name, screens, args.repeat) for name in backends]
    grounding = bench_grounding(backends[0], screens)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              "backends": results, "grounding_backend": backends[0], "grounding": grounding}

    print(f"# OCR on synthetic UI screenshots ({report['machine']}, repeat={args.repeat})\n")
    head = "| screen | size | " + " | ".join(f"{r['backend']} char acc | items | s/capture" for r in results) + " |"
    print(head)
    print("|" + "---|" * (2 + 3 * len(results)))
    for i, screen in enumerate(screens):
        cells = [f"{screen.name} | {screen.image.width}x{screen.image.height}"]
        for r in results:
            row = r["screens"][i]
            cells.append(f"{row['char_accuracy']:.3f} | {row['items_found']:.2f} | {row['seconds']:.2f}")
        print("| " + " | ".join(cells) + " |")
    for r in results:
        accs = [row["char_accuracy"] for row in r["screens"]]
        secs = [row["seconds"] for row in r["screens"]]
        print(f"\n{r['backend']}: load+first {r['load_and_first_seconds']:.2f} s, mean char acc "
              f"{statistics.fmean(accs):.3f}, mean {statistics.fmean(secs):.2f} s/capture")
    print(f"\n# Grounding ({backends[0]}): screen text available to the model\n")
    print("| screen | off: text chars in prompt | off: items legible at 224x224 (OCR proxy) | on: items in prompt | on: context chars |")
    print("|---|---|---|---|---|")
    for row in grounding:
        print(f"| {row['screen']} | {row['off_prompt_chars']} | {row['off_items_legible_at_224']:.2f} | "
              f"{row['on_items_in_prompt']:.2f} | {row['on_prompt_chars']} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
