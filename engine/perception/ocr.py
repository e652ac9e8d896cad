"""Offline OCR of captures: "read the text" and grounding of answers about screens.

Torch-free. Two backends, tried in this order:

* ``rapidocr`` (rapidocr 3 + onnxruntime): PP-OCRv6 detection/recognition models ship inside the
  wheel, so OCR works on a fresh install with no model download. We pass the bundled model files
  explicitly: with ``model_path`` unset rapidocr resolves a model URL and may fetch it from the
  internet, which Lumen must never do at run time.
* ``tesseract`` (the command-line program, e.g. Debian ``tesseract-ocr``), used when rapidocr is not
  installed. Called through a pipe; nothing is written to disk.

The engine object of a backend is created on first use and reused (creating a rapidocr session
costs the model load). ``read_text`` returns lines in reading order: rows top to bottom, items in a
row left to right, and side-by-side blocks of prose (columns) one after the other.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import statistics
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PIL import Image

from engine.perception.reading_order import reading_order
from engine.protocol import ErrorKind, TextLine

log = logging.getLogger(__name__)

BACKENDS = ("rapidocr", "tesseract")


class OcrUnavailable(RuntimeError):
    """No OCR backend is installed (or the named one is not)."""

    kind = ErrorKind.UNAVAILABLE  # how engine.protocol.failure_for reports it


class OcrFailed(RuntimeError):
    """The backend is installed but failed on this image (e.g. the tesseract program crashed)."""


class OcrBackend(Protocol):
    name: str

    def read(self, image: Image.Image) -> list[TextLine]:
        """Text lines of an RGB image, in any order."""


# ---------------------------------------------------------------- rapidocr


_RAPIDOCR_MODELS = {  # Det/Rec/Cls model files shipped in the rapidocr 3 wheel
    "Det.model_path": "PP-OCRv6_det_small.onnx",
    "Rec.model_path": "PP-OCRv6_rec_small.onnx",
    "Cls.model_path": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}


class RapidOcrBackend:
    name = "rapidocr"

    def __init__(self) -> None:
        try:
            import rapidocr
            from rapidocr import RapidOCR
        except ImportError as exc:  # rapidocr or onnxruntime/opencv missing or broken
            raise OcrUnavailable(f"rapidocr is not usable: {exc}") from exc
        model_dir = Path(rapidocr.__file__).parent / "models"
        params: dict[str, object] = {
            "Global.log_level": "error",  # its INFO/WARNING lines (with ANSI colours) are noise for us
            # Defaults shrink a 2560-px screen (max_side_len 2000) and blow a 480x110 crop up to
            # 3200x736 (Det "min" 736): keep captures at their own size up to 4096 px instead.
            "Global.max_side_len": 4096,
            "Det.limit_type": "max",
            "Det.limit_side_len": 4096,
        }
        for key, filename in _RAPIDOCR_MODELS.items():
            path = model_dir / filename
            if not path.is_file():  # never let rapidocr fall back to downloading a model
                raise OcrUnavailable(f"rapidocr's bundled model {path} is missing")
            params[key] = str(path)
        self._engine = RapidOCR(params=params)

    def read(self, image: Image.Image) -> list[TextLine]:
        import numpy as np

        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])  # rapidocr takes OpenCV's BGR order
        result = self._engine(bgr)
        if result.boxes is None or result.txts is None:
            return []
        lines = []
        for points, text, score in zip(result.boxes, result.txts, result.scores):
            text = str(text).strip()
            if not text:
                continue
            xs = [float(p[0]) for p in points]
            ys = [float(p[1]) for p in points]
            box = (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))
            lines.append(TextLine(text, box, float(score)))
        return lines


# ---------------------------------------------------------------- tesseract


class TesseractBackend:
    """The ``tesseract`` program, TSV output. Words are grouped into lines and split at wide gaps,
    so that separate controls on one row ("Don't Save", "Cancel") stay separate items."""

    name = "tesseract"
    UPSCALE_BELOW = 2000  # small UI text reads better at 2x (measured in benchmarks/ocr_grounding.py)

    def __init__(self, executable: str | None = None, language: str = "eng") -> None:
        found = executable or shutil.which("tesseract")
        if not found:
            raise OcrUnavailable("the tesseract program is not installed")
        self.executable = found
        self.language = language
        try:
            langs = self._run(["--list-langs"], b"").decode("utf-8", "replace").split()
        except OcrFailed as exc:
            raise OcrUnavailable(f"tesseract does not run: {exc}") from exc
        if language not in langs:
            raise OcrUnavailable(f"tesseract has no {language!r} language data (has {langs[1:]})")

    def _run(self, args: list[str], stdin: bytes) -> bytes:
        env = dict(os.environ, OMP_THREAD_LIMIT="1")  # its OpenMP threads only slow small images down
        try:
            done = subprocess.run([self.executable, *args], input=stdin, capture_output=True,
                                  timeout=120, env=env, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OcrFailed(f"tesseract: {exc}") from exc
        if done.returncode != 0:
            raise OcrFailed(f"tesseract exited with {done.returncode}: {done.stderr[-500:]!r}")
        return done.stdout

    def read(self, image: Image.Image) -> list[TextLine]:
        scale = 2 if max(image.size) <= self.UPSCALE_BELOW else 1
        if scale != 1:
            image = image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)
        png = io.BytesIO()
        image.save(png, "PNG", compress_level=1)
        tsv = self._run(["stdin", "stdout", "-l", self.language, "--psm", "3", "tsv"], png.getvalue())
        return _lines_from_tsv(tsv.decode("utf-8", "replace"), scale)


def _lines_from_tsv(tsv: str, scale: int) -> list[TextLine]:
    groups: dict[tuple[str, str, str, str], list[tuple[str, float, tuple[int, int, int, int]]]] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip() or float(cols[10]) < 0:
            continue
        left, top, width, height = (int(c) // scale for c in cols[6:10])
        key = (cols[1], cols[2], cols[3], cols[4])  # page, block, paragraph, line
        groups.setdefault(key, []).append((cols[11].strip(), float(cols[10]), (left, top, left + width, top + height)))
    lines = []
    for words in groups.values():
        words.sort(key=lambda w: w[2][0])
        height = statistics.median(w[2][3] - w[2][1] for w in words)
        segment = [words[0]]
        for word in words[1:]:
            if word[2][0] - segment[-1][2][2] > 1.5 * height:  # a wide gap: a separate item
                lines.append(_merge_words(segment))
                segment = []
            segment.append(word)
        lines.append(_merge_words(segment))
    return lines


def _merge_words(words: list[tuple[str, float, tuple[int, int, int, int]]]) -> TextLine:
    box = (min(w[2][0] for w in words), min(w[2][1] for w in words),
           max(w[2][2] for w in words), max(w[2][3] for w in words))
    return TextLine(" ".join(w[0] for w in words), box, statistics.fmean(w[1] for w in words) / 100.0)


# ---------------------------------------------------------------- backend selection (lazy, reused)

_FACTORIES: dict[str, Callable[[], OcrBackend]] = {
    "rapidocr": RapidOcrBackend,
    "tesseract": TesseractBackend,
}
_backends: dict[str, OcrBackend] = {}
_backends_lock = threading.Lock()


def get_backend(name: str | None = None) -> OcrBackend:
    """The backend ``name``, or the first usable one of ``BACKENDS``; created once, then reused."""
    if name is not None and name not in _FACTORIES:
        raise ValueError(f"unknown OCR backend {name!r}; known: {BACKENDS}")
    reasons = []
    with _backends_lock:
        for candidate in [name] if name else list(BACKENDS):
            if candidate in _backends:
                return _backends[candidate]
            try:
                backend = _FACTORIES[candidate]()
            except OcrUnavailable as exc:
                reasons.append(str(exc))
                continue
            log.info("OCR backend: %s", candidate)
            _backends[candidate] = backend
            return backend
    raise OcrUnavailable("no OCR backend is available: " + "; ".join(reasons))


def available_backends() -> tuple[str, ...]:
    """Names of the backends that can be created here (creates and caches them)."""
    names = []
    for name in BACKENDS:
        try:
            get_backend(name)
        except OcrUnavailable:
            continue
        names.append(name)
    return tuple(names)


def read_text(image: Image.Image, backend: str | OcrBackend | None = None) -> tuple[TextLine, ...]:
    """OCR ``image`` and return its text lines in reading order (see ``reading_order``).

    ``backend``: a backend's name or object; None = the first usable one.
    Raises ``OcrUnavailable`` when no backend is installed and ``OcrFailed`` when one fails.
    An image without text gives ``()``.
    """
    reader = backend if backend is not None and not isinstance(backend, str) else get_backend(backend)
    return reading_order(reader.read(_as_rgb(image)))


def _as_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels often hold black; composite onto white so text stays readable.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
