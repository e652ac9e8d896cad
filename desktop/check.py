"""``lumen --check``: a readiness report in plain words, for the user and for support requests.

Checks the graphics card, the model (the one the app loads: engine.store.model_choice), speech output (a
synthesizer and a sound output device), speech input (the Whisper model for spoken questions and a
microphone), the screen reader and global hotkeys without importing torch. ``--engine`` also starts
the real engine process (as the app does), loads the model and asks it to describe a generated test
picture: the proof that the whole chain works (the installers' smoke test runs exactly this from the
frozen bundle).

Exit status: 0 when Lumen can describe (a model is in place, and the engine answered if asked);
1 otherwise. ``--json`` prints the same facts for tools.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckItem:
    area: str  # "GPU", "Model", "Speech", "Speech input", "Screen reader", "Hotkeys", "Engine"
    ready: bool | None  # None: optional or unknown (does not fail the check)
    summary: str  # one plain sentence
    detail: str = ""  # for support: paths, versions, errors

    def line(self) -> str:
        state = {True: "ready", False: "NOT READY", None: "note"}[self.ready]
        return f"{self.area}: {state}. {self.summary}" + (f" ({self.detail})" if self.detail else "")


def check_gpu() -> CheckItem:
    from engine.store.hardware import describe_gpus, detect

    hw = detect()
    if hw.gpus:
        return CheckItem("GPU", True, f"Found {describe_gpus(hw.gpus)}.", f"via {hw.source}")
    return CheckItem("GPU", None, "No supported graphics card; models run on the processor, slowly.", hw.problem)


def check_backend(model_dir: Path | None, requested: str = "auto") -> CheckItem:
    """Which engine runs the language model, and why (engine.store.backends.choose_backend)."""
    from engine.protocol import Backend
    from engine.store import gguf_convert
    from engine.store.backends import choose_backend, llamacpp_installed
    from engine.store.hardware import detect
    from engine.store.memory import llm_params
    from engine.store.model_folder import LLM_DIR, CheckpointError, read_llm_json

    if model_dir is None:
        return CheckItem("Language model", None, "No model to run yet.")
    try:
        llm = read_llm_json(Path(model_dir) / LLM_DIR)
    except CheckpointError as exc:
        return CheckItem("Language model", False, "The model's language model cannot be read: its folder is damaged. "
                         "Set the model up again (lumen models download, or Tools, Set up model).", str(exc))
    cuda = [g.free_bytes for g in detect().gpus if g.backend == "cuda"]
    needed = gguf_convert.estimate_bytes(sum(llm_params(llm)), "f16") + int(2e9)  # + the vision side and the runtime
    gguf, installed = gguf_convert.available(Path(model_dir)), llamacpp_installed()
    backend, why = choose_backend(requested, max(cuda) if cuda else None, needed, gguf, installed)
    ready = backend == Backend.TORCH or bool(gguf and installed)  # llama.cpp chosen in Settings without its file fails
    return CheckItem("Language model", ready, f"Runs through {why}.", f"{backend}; {model_dir}")


def check_model(models_dir: Path | None) -> CheckItem:
    """The model the app would load (engine.store.model_choice), said as what it is."""
    from engine.store.model_choice import Origin, choose_from_settings
    from engine.store.model_store import ModelStore

    choice = choose_from_settings(ModelStore(models_dir))
    notice = f"{choice.notice} " if choice.notice else ""  # the settings' folder is unusable: not ready
    setup = "Set up MiniGPT-4 in the app (Tools, Set up model) or run: lumen models download vicuna0-7b."
    if choice.path is None:
        return CheckItem("Model", False, f"{notice}No model is set up. {setup}")
    if choice.demo:  # it answers, so Lumen works: a note, not a failure
        summary = f"{notice}Lumen uses the small demo model: it only knows coloured shapes, not real screens or photos. {setup}"
        return CheckItem("Model", False if notice else None, summary, str(choice.path))
    if choice.origin is Origin.SETTINGS:
        origin = "chosen in the settings"
    elif len(choice.installed) > 1:
        origin = f"the one installed last of {len(choice.installed)} installed models"
    else:
        origin = "installed"
    return CheckItem("Model", False if notice else True, f"{notice}{choice.title}, {origin}.", str(choice.path))


def sound_outputs() -> list[str]:
    """The sound output devices the system reports to QtMultimedia, which plays Lumen's voice."""
    try:
        from PySide6.QtMultimedia import QMediaDevices
    except ImportError:
        return []
    return [device.description() for device in QMediaDevices.audioOutputs()]


def microphone_problem() -> tuple[str, str] | None:
    """(reason, detail) when the microphone cannot be opened as a spoken question opens it
    (desktop.microphone: PortAudio, 16 kHz mono), else None. Opened and closed, never started."""
    from desktop.microphone import MicrophoneUnavailable, sounddevice_stream

    try:
        sounddevice_stream(lambda block: None).close()
    except MicrophoneUnavailable as exc:
        return exc.reason, str(exc)
    return None


def check_speech(outputs: Callable[[], list[str]] | None = None) -> CheckItem:
    from desktop.speech_output.voice_drivers import driver_name, driver_problem

    voice = f"own voice: {driver_name()}"
    problem = driver_problem()
    if problem is not None:
        return CheckItem("Speech", False, problem, voice)
    devices = (outputs or sound_outputs)()
    if not devices:
        return CheckItem("Speech", False, "No sound output device was found, so Lumen's voice cannot be heard. Connect "
                         "speakers or headphones. Lumen's messages still appear in its window, for a braille display.",
                         voice)
    return CheckItem("Speech", True, "Speech output is available.", f"{voice}; sound output: {', '.join(devices)}")


def check_speech_input(models_dir: Path | None,
                       microphone: Callable[[], tuple[str, str] | None] | None = None) -> CheckItem:
    """The Whisper model spoken questions use (Settings, Speech), checked as before each question,
    and the microphone they are recorded with."""
    import importlib.util

    from desktop import messages
    from desktop.settings import load
    from desktop.speech_model_choice import SpeechModelChooser, language_name
    from engine.store.catalogue import get_speech_model
    from engine.store.speech_models import SpeechModelStore

    if importlib.util.find_spec("faster_whisper") is None:
        return CheckItem("Speech input", None, messages.tr(messages.CHECK_VOICE_MISSING))
    settings = load().settings
    choice = SpeechModelChooser(lambda: SpeechModelStore(models_dir)).choose(settings.speech_model, settings.speech_language)
    path = choice.model_path or ""
    if choice.bundled:
        from engine.perception.speech_recognition import SpeechInputUnavailable, default_model_path

        try:
            path = str(default_model_path())
        except SpeechInputUnavailable as exc:
            return CheckItem("Speech input", False, messages.tr(messages.CHECK_BUNDLED_MISSING), str(exc))
    words = messages.tr(messages.CHECK_SPEECH_BUNDLED if choice.bundled else messages.CHECK_SPEECH_MODEL).format(
        title=choice.spec.title, language=language_name(settings.speech_language))
    if choice.refusal:
        return CheckItem("Speech input", False, choice.refusal, f"{words} {path}")
    if choice.notice:  # the chosen model is missing: the bundled one stands in
        chosen = get_speech_model(settings.speech_model).title
        summary = messages.tr(messages.SPEECH_MODEL_MISSING).format(title=chosen)
        return CheckItem("Speech input", False, f"{summary} {messages.tr(messages.CHECK_SPEECH_STANDIN).format(title=choice.spec.title)}", path)
    problem = (microphone or microphone_problem)()
    if problem:
        reason, detail = problem
        return CheckItem("Speech input", False, f"{messages.voice_failure_text(reason)} {words}", f"{path}; {detail}")
    return CheckItem("Speech input", True, words, path)


def check_screen_reader() -> CheckItem:
    """The reader Lumen speaks through now, as the app decides it (desktop.speech_output.probe)."""
    from desktop.speech_output import probe

    return CheckItem("Screen reader", None, probe().summary())


def check_capture() -> CheckItem:
    from desktop import messages
    from desktop.capture import capture_supported
    from desktop.session import CAPTURE_VIA, screen_recording_allowed, session_type

    session = session_type()
    if not capture_supported():
        return CheckItem("Screen capture", False, "There is no graphical session to capture; photos still work.")
    if session == "wayland":
        from desktop import portal

        if not portal.has_interface(portal.SCREENSHOT):
            return CheckItem("Screen capture", False, "This is a Wayland session and the desktop offers no "
                             "screenshot portal; photos still work.", CAPTURE_VIA[session])
    if not screen_recording_allowed():
        return CheckItem("Screen capture", False, messages.tr(messages.SCREEN_RECORDING_DENIED), CAPTURE_VIA[session])
    return CheckItem("Screen capture", True, "The screen can be captured.", CAPTURE_VIA[session])


def check_focus() -> CheckItem:
    """Describe the focused control: how it is found here, and the macOS Accessibility permission."""
    from desktop import messages
    from desktop.session import FOCUS_VIA, accessibility_allowed, session_type

    session = session_type()
    if session == "none":
        return CheckItem("Focused control", None, "There is no graphical session.")
    if session == "wayland":
        return CheckItem("Focused control", None, messages.tr(messages.WAYLAND_WHOLE_SCREEN["focus"]), FOCUS_VIA[session])
    if not accessibility_allowed():
        return CheckItem("Focused control", False, messages.tr(messages.ACCESSIBILITY_DENIED), FOCUS_VIA[session])
    return CheckItem("Focused control", True, "The focused control is looked up through the accessibility interface.",
                     FOCUS_VIA[session])


def check_hotkeys() -> CheckItem:
    from desktop.hotkeys import check_bindings, hotkeys_supported
    from desktop.session import HOTKEYS_VIA, session_type
    from desktop.settings import load

    reason = hotkeys_supported()
    if reason:
        return CheckItem("Hotkeys", False, f"Global hotkeys cannot work: {reason}. Use the window's buttons and menus.")
    problems = check_bindings(dict(load().settings.hotkeys.items()))
    if problems:
        return CheckItem("Hotkeys", False, "Some hotkeys need changing: " + " ".join(problems))
    return CheckItem("Hotkeys", True, "Global hotkeys can be used.", HOTKEYS_VIA[session_type()])


def _test_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (224, 160), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, 120, 90), fill="red")
    draw.ellipse((130, 60, 210, 140), fill="blue")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def check_engine(model_dir: Path | None, device: str = "auto", timeout: float = 300.0) -> CheckItem:
    """Spawn the engine process, load the model and describe a test picture (8 tokens)."""
    from engine.protocol import Describe, Finished, GenerationSettings, ImageInput, LoadModel, ModelReady
    from engine.worker import spawn_worker

    if model_dir is None:
        return CheckItem("Engine", False, "Not started: there is no model to load.")
    started = time.monotonic()
    engine = spawn_worker()

    def answer(request: LoadModel | Describe) -> object:  # the request's last event, or why none came
        try:
            return engine.request(request, max(0.0, started + timeout - time.monotonic()))[-1]
        except (TimeoutError, EOFError, OSError) as exc:
            return exc

    try:
        ready = answer(LoadModel(str(model_dir), device=device))
        if not isinstance(ready, ModelReady):
            return CheckItem("Engine", False, "The engine could not load the model.", _why(ready))
        done = answer(Describe(1, "lumen-check", "Describe this image.", new_image_ids=("check",),
                               images=(ImageInput("check", _test_png()),),
                               settings=GenerationSettings.greedy(max_new_tokens=8)))
        if not isinstance(done, Finished):
            return CheckItem("Engine", False, "The engine loaded the model but could not describe a test picture.", _why(done))
        seconds = time.monotonic() - started
        return CheckItem("Engine", True, f"The engine process started and described a test picture in {seconds:.0f} seconds.",
                         f"{ready.summary}; pid {engine.pid}; answer {done.text!r}")
    finally:
        engine.stop()


def _why(event: object) -> str:
    kind = getattr(event, "kind", None)
    return f"{kind}: {getattr(event, 'detail', '')[:300]}" if kind else f"{type(event).__name__}: {event}"


def run_checks(models_dir: Path | None = None, engine: bool = False, device: str = "auto") -> list[CheckItem]:
    items = []
    for check in (check_gpu, lambda: check_model(models_dir), check_speech, lambda: check_speech_input(models_dir),
                  check_screen_reader, check_capture, check_focus, check_hotkeys):
        try:
            items.append(check())
        except Exception as exc:  # a broken check must not hide the others
            log.exception("check failed")
            items.append(CheckItem("Check", None, "One check could not run.", f"{type(exc).__name__}: {exc}"))
    from engine.store.model_choice import choose_from_settings
    from engine.store.model_store import ModelStore

    model_dir = choose_from_settings(ModelStore(models_dir)).path
    try:
        from desktop.settings import load

        items.append(check_backend(model_dir, load().settings.backend))
    except Exception as exc:
        log.exception("check failed")
        items.append(CheckItem("Language model", None, "The language model's engine could not be chosen.", f"{type(exc).__name__}: {exc}"))
    if engine:
        items.append(check_engine(model_dir, device))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lumen --check", description="Report whether Lumen is ready, in plain words.")
    parser.add_argument("--engine", action="store_true", help="also start the engine, load the model and describe a test picture")
    parser.add_argument("--device", default="auto", help="engine device for --engine (auto, cpu, cuda)")
    parser.add_argument("--models-dir", type=Path, help="model store folder (default: LUMEN_MODELS_DIR or the user data folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    items = run_checks(args.models_dir, args.engine, args.device)
    header = {
        "lumen": _version(), "python": platform.python_version(), "system": platform.platform(),
        "frozen": bool(getattr(sys, "frozen", False)), "session": os.environ.get("XDG_SESSION_TYPE", ""),
    }
    if args.json:
        print(json.dumps({**header, "checks": [asdict(i) for i in items]}, indent=1))
    else:
        print(f"Lumen {header['lumen']} on {header['system']}, Python {header['python']}{', installed bundle' if header['frozen'] else ''}.")
        for item in items:
            print(item.line())
    essential = [i for i in items if i.area in ("Model", "Engine")]
    return 0 if essential and all(i.ready is not False for i in essential) else 1  # the demo model is a note


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lumen-assistant")
    except Exception:  # not installed (a source checkout or a bundle without metadata)
        return "0.1.0"


if __name__ == "__main__":
    sys.exit(main())
