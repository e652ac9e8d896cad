"""``lumen --check``: the plain-words readiness report, including a real engine round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from desktop import check
from desktop.settings import Settings, save
from tests.fake_gpu import fake_nvidia_smi  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def tiny_model(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.minigpt4.converter import convert_official
    from engine.minigpt4.config import tiny

    ck = reference_dir / "checkpoints"
    out = tmp_path_factory.mktemp("store") / "vicuna0-7b"
    convert_official(out, config=tiny(), eva_vit=ck / "eva_vit_g.pth", blip2=ck / "blip2_pretrained_flant5xxl.pth",
                     projection=ck / "pretrained_minigpt4_tiny.pth", llm_dir=ck / "vicuna-tiny")
    return out


def test_reports_every_area_in_words(fake_nvidia_smi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DISPLAY", ":99")
    save(dataclasses.replace(Settings(), model_dir=str(tmp_path / "gone")))
    assert check.main(["--models-dir", str(tmp_path / "models")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Lumen ")
    areas = [line.split(":")[0] for line in out[1:]]
    assert areas == ["GPU", "Model", "Speech", "Speech input", "Screen reader", "Screen capture", "Focused control",
                     "Hotkeys", "Language model"]
    assert out[1].startswith("GPU: ready. Found NVIDIA GeForce RTX 3060")
    assert out[2].startswith(f"Model: NOT READY. The model folder chosen in the settings, {tmp_path / 'gone'}, is missing")
    assert "Lumen uses the small demo model" in out[2]  # what answers instead, as what it is


@pytest.mark.system
def test_only_the_demo_model_is_a_note_that_says_what_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["--models-dir", str(tmp_path / "models"), "--json"]) == 0  # it answers: Lumen works
    model = {c["area"]: c for c in json.loads(capsys.readouterr().out)["checks"]}["Model"]
    assert model["ready"] is None
    assert model["summary"].startswith("Lumen uses the small demo model: it only knows coloured shapes")
    assert "lumen models download vicuna0-7b" in model["summary"] and model["detail"].endswith("demo_model")


def test_wayland_or_no_display_explains_hotkeys(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("DISPLAY", raising=False)
    item = check.check_hotkeys()
    assert item.ready is False and "Wayland" in item.summary


def test_check_says_how_hotkeys_and_capture_work_in_this_session(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    hotkeys, capture = check.check_hotkeys(), check.check_capture()
    assert hotkeys.ready and "XGrabKey" in hotkeys.detail and "for real" in hotkeys.detail
    assert capture.ready and "X11" in capture.detail
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/lumen-test-bus")
    hotkeys, capture = check.check_hotkeys(), check.check_capture()
    assert not hotkeys.ready and "Wayland" in hotkeys.summary and "portal" in hotkeys.summary
    assert not capture.ready and "Wayland" in capture.summary and "screenshot portal" in capture.summary


def test_check_says_when_screen_recording_is_not_allowed(monkeypatch) -> None:  # noqa: ANN001
    """macOS without the Screen Recording permission: a plain sentence, not a NameError."""
    from desktop import messages, session

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    monkeypatch.setattr(session, "screen_recording_allowed", lambda: False)
    capture = check.check_capture()
    assert not capture.ready and capture.summary == messages.tr(messages.SCREEN_RECORDING_DENIED)


@pytest.mark.system
def test_engine_round_trip_with_an_installed_model(tiny_model: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DISPLAY", ":99")
    code = check.main(["--models-dir", str(tiny_model.parent), "--engine", "--device", "cpu", "--json"])
    report = json.loads(capsys.readouterr().out)
    by_area = {c["area"]: c for c in report["checks"]}
    assert by_area["Model"]["ready"] and by_area["Model"]["detail"] == str(tiny_model)
    assert by_area["Model"]["summary"] == "MiniGPT-4 with Vicuna 7B, installed."
    assert by_area["Engine"]["ready"], by_area["Engine"]
    assert "described a test picture" in by_area["Engine"]["summary"]
    assert code == 0


@pytest.mark.system
def test_engine_failure_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "lumen_model.json").write_text("{}")
    item = check.check_engine(bad, device="cpu", timeout=120)
    assert item.ready is False and "could not load" in item.summary and "model_missing" in item.detail


def test_no_sound_device_and_no_microphone_are_not_ready(tmp_path: Path) -> None:
    """The decision, from what the system reports (QtMultimedia's outputs, PortAudio's microphone)."""
    speech = check.check_speech(outputs=lambda: [])
    assert speech.ready is False and speech.summary.startswith("No sound output device was found")
    assert check.check_speech(outputs=lambda: ["Speakers"]).ready is True
    mic = check.check_speech_input(tmp_path, microphone=lambda: ("no_microphone", "Error querying device -1"))
    assert mic.ready is False and mic.summary.startswith("No microphone was found.") and "device -1" in mic.detail
    assert check.check_speech_input(tmp_path, microphone=lambda: None).ready is True


@pytest.fixture
def null_sound(tmp_path: Path):  # noqa: ANN201
    """A private PulseAudio server with a null output and a null microphone (no sound card needed):
    QtMultimedia sees the output, PortAudio (through ALSA's pulse plugin) the microphone."""
    import glob
    import os
    import shutil
    import subprocess
    import time

    if not shutil.which("pulseaudio") or not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"):
        pytest.skip("needs pulseaudio and ALSA's pulse plugin (apt-get install pulseaudio libasound2-plugins)")
    run, home = tmp_path / "run", tmp_path / "home"
    run.mkdir(mode=0o700)
    home.mkdir()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run), "HOME": str(home)}
    env.pop("PULSE_SERVER", None)  # the session's own null output (conftest) would hide this server's absence
    server = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disable-shm=yes",
         "-L", "module-native-protocol-unix", "-L", "module-null-sink sink_name=lumen_test_output",
         "-L", "module-null-source source_name=lumen_test_microphone"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (run / "pulse" / "native").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (run / "pulse" / "native").exists(), "pulseaudio did not start"
        yield env, server
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.system
def test_check_finds_a_sound_output_and_a_microphone_and_misses_them_when_gone(null_sound, tmp_path: Path) -> None:  # noqa: ANN001
    import subprocess
    import sys

    env, server = null_sound
    env = {**env, "QT_QPA_PLATFORM": "offscreen"}

    def speech_checks() -> dict[str, dict]:
        out = subprocess.run([sys.executable, "-m", "desktop", "--check", "--json"], env=env, capture_output=True,
                             text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
        return {c["area"]: c for c in json.loads(out.stdout)["checks"] if c["area"].startswith("Speech")}

    found = speech_checks()
    assert found["Speech"]["ready"] is True and "sound output: Null Output" in found["Speech"]["detail"]
    assert found["Speech input"]["ready"] is True, found["Speech input"]
    server.terminate()
    server.wait(10)
    if Path("/dev/snd").exists():
        return  # a real sound card still answers without the server: only the positive case is proven here
    gone = speech_checks()
    assert gone["Speech"]["ready"] is False and gone["Speech"]["summary"].startswith("No sound output device")
    assert gone["Speech input"]["ready"] is False and gone["Speech input"]["summary"].startswith("No microphone")


def test_the_back_end_check_does_not_import_torch(tiny_model: Path) -> None:
    """``lumen --check`` without ``--engine`` never imports torch (its promise): saying which back-end
    runs the model goes through the torch-free engine.store.backends, not the llama.cpp decoder."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from desktop import check; "
            f"print(check.check_backend(Path({str(tiny_model)!r})).ready, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["True", "False"], out.stderr


@pytest.mark.system
def test_the_language_models_engine_is_chosen_and_explained(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """No NVIDIA GPU: llama.cpp once the folder has a GGUF file, torch (and how to convert) before."""
    import shutil

    from engine.store import gguf_convert

    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    item = check.check_backend(folder)
    assert item.detail.startswith("torch") and "lumen models gguf" in item.summary
    chosen = check.check_backend(folder, "llamacpp")  # Settings asks for llama.cpp before the file exists
    assert chosen.ready is False and chosen.detail.startswith("llamacpp") and "no GGUF file yet" in chosen.summary
    gguf_convert.gguf_path(folder, "f32").parent.mkdir()
    gguf_convert.gguf_path(folder, "f32").write_bytes(b"")
    item = check.check_backend(folder)
    assert item.detail.startswith("llamacpp") and "llama.cpp with the f32 GGUF file (no NVIDIA GPU)" in item.summary
    assert check.check_backend(folder, "torch").summary == "Runs through torch, as chosen in Settings."
    chosen = check.check_backend(folder, "llamacpp")
    assert chosen.ready and chosen.summary == "Runs through llama.cpp with the f32 GGUF file, as chosen in Settings."


def test_check_says_how_the_focused_control_is_found_and_the_macos_permission(monkeypatch) -> None:  # noqa: ANN001
    from desktop import messages, session

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    item = check.check_focus()
    assert item.ready and "AT-SPI" in item.detail and "for real" in item.detail
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    item = check.check_focus()
    assert item.ready is None and "Wayland" in item.summary
    monkeypatch.setattr(session, "session_type", lambda: "macos")
    monkeypatch.setattr(session, "accessibility_allowed", lambda request=False, hi=None: False)
    item = check.check_focus()
    assert item.ready is False and item.summary == messages.ACCESSIBILITY_DENIED and "fakes only" in item.detail


def test_check_names_the_screen_recording_setting_on_macos(monkeypatch) -> None:  # noqa: ANN001
    """The refusal's sentence was built with a module check.py never imported (a NameError that
    run_checks turned into "One check could not run")."""
    from desktop import messages, session

    monkeypatch.setattr(session, "session_type", lambda: "macos")
    monkeypatch.setattr(session, "screen_recording_allowed", lambda request=False, cg=None: False)
    item = check.check_capture()
    assert item.ready is False and item.summary == messages.SCREEN_RECORDING_DENIED
    assert "ScreenCaptureKit" in item.detail and "fakes" in item.detail


def test_a_damaged_language_model_configuration_is_said_in_words(tmp_path: Path) -> None:
    """A garbled llm/config.json: not ready, what to do, and the file named; no exception."""
    import shutil

    from engine.store.locations import demo_model_dir

    folder = tmp_path / "model"
    shutil.copytree(demo_model_dir(), folder)
    (folder / "llm" / "config.json").write_text('{"model_type": "llama", ')
    item = check.check_backend(folder)
    assert item.ready is False and "cannot be read" in item.summary and "Set the model up again" in item.summary
    assert str(folder / "llm" / "config.json") in item.detail and "not valid JSON" in item.detail
