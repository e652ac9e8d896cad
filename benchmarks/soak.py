"""Soak: drive the real app through thousands of mixed requests and watch it for growth and crashes.

The composed app (``desktop.app.build``: window, transcript, controller, engine client) with the
engine in its own process (the demo model, or the tiny parity model) and real screen captures
(mss on the X display). The requests cycle through a screen description, a follow-up question,
a photo, a follow-up stopped at its first word, and a screen description stopped at once; every
``--conversation`` requests the conversation is started afresh, as a user would. Every
``--every`` requests it prints the app's resident memory, the engine's, the app's open file
descriptors, its X server connections, and the latency (median and 95th percentile of full
answers) since the last report; last, one JSON line.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python benchmarks/soak.py --requests 2000

``--backend llamacpp`` converts a copy of the model to an f16 GGUF and decodes with llama.cpp (KV cache
kept across follow-ups, the thread tuner at work). ``--voice`` speaks with the real voice (much slower: every answer is played); by default the
speech and earcons are recorded, not played. tests/desktop/test_long_run.py runs the same driver
for a few hundred requests.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KINDS = ("screen", "follow_up", "photo", "follow_up_stopped", "screen_stopped")


# ---------------------------------------------------------------- what is measured


def rss_mb(pid: int | None = None) -> float | None:
    try:
        status = Path(f"/proc/{pid or 'self'}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def socket_inodes(pid: int | None = None) -> list[str]:
    """The inode of every socket the process has open (Linux /proc)."""
    folder = f"/proc/{pid or 'self'}/fd"
    inodes = []
    for name in os.listdir(folder):
        try:
            target = os.readlink(f"{folder}/{name}")
        except OSError:  # closed meanwhile (e.g. the listing's own descriptor)
            continue
        if target.startswith("socket:["):
            inodes.append(target[8:-1])
    return inodes


def open_fds(pid: int | None = None) -> int:
    return len(os.listdir(f"/proc/{pid or 'self'}/fd")) - (pid is None)  # not the listing's own


def x_connections(pid: int | None = None) -> int | None:
    """How many connections the process has to the X server (None where ``ss`` is missing)."""
    try:
        out = subprocess.run(["ss", "-x", "-n"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    server_peers = set()
    for line in out.splitlines()[1:]:
        parts = line.split()  # Netid State Recv-Q Send-Q Local Port Peer Port
        if len(parts) >= 8 and ".X11-unix" in parts[4]:
            server_peers.add(parts[7])  # the server side's peer: a client's socket
    return sum(1 for inode in socket_inodes(pid) if inode in server_peers)


def figures(engine_pid: int | None) -> dict[str, float | int | None]:
    return {"rss_mb": rss_mb(), "engine_rss_mb": rss_mb(engine_pid) if engine_pid else None,
            "fds": open_fds(), "x_connections": x_connections()}


# ---------------------------------------------------------------- the driver


def photo_bytes() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (400, 300), (250, 240, 200))
    draw = ImageDraw.Draw(image)
    draw.ellipse((120, 60, 280, 220), fill=(200, 40, 40), outline=(0, 0, 0))
    draw.text((150, 250), "A red ball", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass
class Soak:
    """Sends one request at a time through ``lumen`` (a ``desktop.app.LumenApp``) and waits for it."""

    lumen: object
    timeout: float = 120.0
    conversation_every: int = 20
    latencies: list[float] = field(default_factory=list)  # full answers only
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # what the user was told instead of an answer

    def __post_init__(self) -> None:
        from desktop import image_input

        c = self.lumen.controller
        data = photo_bytes()
        self._photo = lambda side: image_input.from_bytes(data, "ball.png", side)  # open_photo's loader
        self._finished = 0
        self._deltas = 0
        self._failed = 0
        c.answer_finished.connect(self._on_finished)
        c.answer_delta.connect(self._on_delta)
        real_fail = c.fail

        def fail(text: str) -> None:  # every failure reaches the user through ``fail``
            self._failed += 1
            self.failures.append(text)
            real_fail(text)

        c.fail = fail

    def _on_finished(self, _text: str) -> None:
        self._finished += 1

    def _on_delta(self, _text: str) -> None:
        self._deltas += 1

    def wait(self, done: Callable[[], bool], what: str) -> None:
        from PySide6.QtWidgets import QApplication

        deadline = time.monotonic() + self.timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no end to {what} within {self.timeout:.0f} s")
            QApplication.processEvents()
            time.sleep(0.001)

    def request(self, n: int) -> str:
        """Request number ``n`` (0-based); returns its kind."""
        c = self.lumen.controller
        if n and n % self.conversation_every == 0:
            c.new_conversation()
        kind = KINDS[n % len(KINDS)]
        finished, failed, deltas = self._finished, self._failed, self._deltas
        answered = lambda: self._finished > finished or self._failed > failed  # noqa: E731
        start = time.monotonic()
        if kind == "screen":
            c.handle_action("describe_screen")
        elif kind == "photo":
            c.open_photo(self._photo)
        elif kind in ("follow_up", "follow_up_stopped"):
            if not c.conversation.has_images:
                c.open_photo(self._photo)
            else:
                c.ask("What colour is the largest thing?")
            if kind == "follow_up_stopped":
                self.wait(lambda: self._deltas > deltas or answered(), kind)
                c.handle_action("stop")
        elif kind == "screen_stopped":
            c.handle_action("describe_screen")
            c.handle_action("stop")
        if kind.endswith("stopped"):
            self.wait(lambda: c.state.value == "idle" and c._active is None, kind)
        else:
            self.wait(answered, kind)
            if self._failed == failed:
                self.latencies.append(time.monotonic() - start)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return kind


def run(lumen, requests: int, every: int, report: Callable[[dict], None], timeout: float = 120.0) -> list[dict]:
    """Drive ``lumen`` (started, model loaded) for ``requests`` requests; one report per ``every``."""
    soak = Soak(lumen, timeout=timeout)
    reports = []
    mark = 0
    start = time.monotonic()
    for n in range(requests):
        soak.request(n)
        if (n + 1) % every == 0 or n + 1 == requests:
            recent = soak.latencies[mark:]
            mark = len(soak.latencies)
            row = {"requests": n + 1, "elapsed_s": round(time.monotonic() - start, 1), **figures(lumen.engine.pid),
                   "latency_median_s": round(statistics.median(recent), 3) if recent else None,
                   "latency_p95_s": round(sorted(recent)[int(0.95 * (len(recent) - 1))], 3) if recent else None,
                   "failures": len(soak.failures)}
            reports.append(row)
            report(row)
    return reports


def build_app(settings_dir: Path, model: str, voice: bool, launcher=None, backend: str = "torch"):  # noqa: ANN001, ANN201
    """The composed app, started, with ``model`` loaded on the CPU by ``backend`` (quiet speech unless ``voice``)."""
    from desktop import app
    from desktop.settings import Settings, SpeechOutput, save
    from engine.protocol import ModelReady
    from tests.fakes import RecordingEarcons, RecordingSpeaker

    path = settings_dir / "settings.json"
    save(Settings(model_dir=model, device="cpu", speech_output=SpeechOutput.VOICE, max_new_tokens=32, backend=backend), path)
    quiet = {} if voice else {"speaker": RecordingSpeaker(), "earcons": RecordingEarcons()}
    lumen = app.build(path, launcher=launcher, **quiet)
    ready: list = []
    lumen.engine.event.connect(lambda e: ready.append(e) if isinstance(e, ModelReady) else None)
    app.start(lumen, hotkeys=False, first_run_setup=False)
    Soak(lumen, timeout=300).wait(lambda: bool(ready), "loading the model")
    print(f"model: {ready[0].summary}", file=sys.stderr, flush=True)
    return lumen


def model_dir(arg: str | None, scratch: Path) -> str:
    if arg:
        return arg
    from engine.store.locations import demo_model_dir

    demo = demo_model_dir()
    if demo is not None:
        return str(demo)
    from tests.conftest import convert_reference

    return str(convert_reference(scratch / "tiny"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--model", help="model directory (default: resources/demo_model, else the tiny fixtures)")
    parser.add_argument("--voice", action="store_true", help="speak with the real voice")
    parser.add_argument("--backend", choices=("torch", "llamacpp"), default="torch",
                        help="llamacpp: a copy of the model converted to an f16 GGUF, decoded by llama.cpp")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        print("needs an X display: run under xvfb-run (see the docstring)", file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    qt_app = QApplication.instance() or QApplication([])  # noqa: F841
    with tempfile.TemporaryDirectory(prefix="lumen-soak-") as scratch:
        os.environ["LUMEN_CONFIG_DIR"] = str(Path(scratch) / "config")
        model = model_dir(args.model, Path(scratch))
        if args.backend == "llamacpp":
            import shutil

            from engine.store import gguf_convert

            model = shutil.copytree(model, Path(scratch) / "gguf-model")
            gguf_convert.convert(model, "f16")
        lumen = build_app(Path(scratch), str(model), args.voice, backend=args.backend)
        print(f"{'requests':>8} {'s':>7} {'app MB':>7} {'engine MB':>9} {'fds':>4} {'X':>3} "
              f"{'median s':>8} {'p95 s':>6} {'failed':>6}", flush=True)

        def show(r: dict) -> None:
            print(f"{r['requests']:>8} {r['elapsed_s']:>7} {r['rss_mb']:>7.1f} {r['engine_rss_mb'] or 0:>9.1f} "
                  f"{r['fds']:>4} {r['x_connections'] if r['x_connections'] is not None else '-':>3} "
                  f"{r['latency_median_s'] or 0:>8} {r['latency_p95_s'] or 0:>6} {r['failures']:>6}", flush=True)

        try:
            reports = run(lumen, args.requests, args.every, show)
        finally:
            lumen.shutdown()
    print(json.dumps({"requests": args.requests, "reports": reports}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
