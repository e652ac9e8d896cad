"""Spoken-question recognition: exact-match rate, word error rate and time per question.

    .venv/bin/python benchmarks/speech_input.py [--model DIR] [--speed 150]

Questions are spoken by espeak-ng (a robotic voice, harder than most people for Whisper) and
resampled to 16 kHz with sox, as in the tests. The default model is the bundled Whisper tiny.en;
``--model`` takes any CTranslate2 Whisper directory for a side-by-side run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.perception import speech_recognition  # noqa: E402
from tests.ocr_screens import edit_distance  # noqa: E402
from tests.speech_samples import normalise, spoken_wav  # noqa: E402

QUESTIONS = (
    "what is on my screen", "read the error message", "describe this picture", "what does the dialog say",
    "is there a button to save", "what color is the car", "how many people are in the photo",
    "what is the title of this window", "read the text", "which tab is selected", "is the checkbox ticked",
    "what is written on the sign", "where is the close button", "what time does the clock show",
    "is anyone smiling", "what is in the menu", "what does the warning say", "how much is the total",
    "who sent this email", "what is the weather forecast",
)


def word_errors(hyp: str, ref: str) -> int:
    return edit_distance(hyp.split(), ref.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="CTranslate2 Whisper directory (repeatable)")
    parser.add_argument("--speed", type=int, default=150, help="espeak-ng words per minute")
    args = parser.parse_args()
    models = [None, *args.model]
    wavs = {q: spoken_wav(q, speed=args.speed) for q in QUESTIONS}
    print(f"| model | exact | WER | s/question | load s |\n|---|---|---|---|---|")
    for model in models:
        started = time.perf_counter()
        recognizer = speech_recognition.get_recognizer(model)
        load = time.perf_counter() - started
        exact, errors, words, times, misses = 0, 0, 0, [], []
        for question, wav in wavs.items():
            t0 = time.perf_counter()
            try:
                heard = normalise(recognizer.transcribe(speech_recognition.decode_wav(wav), "en"))
            except speech_recognition.NothingHeard as exc:
                heard = f"<{exc.reason}>"
            times.append(time.perf_counter() - t0)
            exact += heard == question
            errors += word_errors(heard, question)
            words += len(question.split())
            if heard != question:
                misses.append(f"{question!r} -> {heard!r}")
        print(f"| {recognizer.model_path.name if model else 'bundled tiny.en'} | {exact}/{len(QUESTIONS)} | "
              f"{errors / words:.3f} | {statistics.median(times):.2f} | {load:.2f} |")
        for miss in misses:
            print(f"    {miss}")


if __name__ == "__main__":
    main()
