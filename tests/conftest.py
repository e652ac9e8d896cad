"""Shared test setup: fixture paths, the offline guard, GPU markers."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LUMEN_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "fixtures" / "reference"

# Never reach a hub from a test. Set before anything imports transformers/huggingface_hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tests/native_preload.py imports onnxruntime before any engine module sets this (engine/__init__.py).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"


class NetworkAccessError(RuntimeError):
    pass


_LOOPBACK = ("127.", "::1", "localhost")


def _is_local(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        return host.startswith(_LOOPBACK) or host == ""
    return True  # AF_UNIX paths (multiprocessing, dbus, X11)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to a non-loopback address fails loudly instead of hanging."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: object) -> None:
        if not _is_local(address):
            raise NetworkAccessError(f"test tried to connect to {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: object) -> int:
        if not _is_local(address):
            raise NetworkAccessError(f"test tried to connect to {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the real user's settings, nor use the real user's model store (the app,
    ``lumen --check`` and ``lumen models`` decide from both which model Lumen loads)."""
    monkeypatch.setenv("LUMEN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LUMEN_MODELS_DIR", str(tmp_path / "models"))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE / "manifest.json").exists():
        pytest.fail(f"parity fixtures not found at {REFERENCE} (expected ../shared beside the repo)")
    return REFERENCE


@pytest.fixture(scope="session")
def manifest(reference_dir: Path) -> dict:
    """The parity fixtures' record of the official code's inputs and outputs."""
    return json.loads((reference_dir / "manifest.json").read_text())


@pytest.fixture(scope="session")
def expected(reference_dir: Path) -> dict:
    """The official code's tensors for the parity cases (name -> tensor)."""
    from safetensors.torch import load_file

    return load_file(str(reference_dir / "expected" / "expected.safetensors"))


# The two tiers. Unit (``scripts/test.sh --fast``, ``-m "not system"``): in-process code, scripted engines,
# widgets on the shared Xvfb, the tiny model in-process; the developer's loop, under 2 minutes.
# System: what starts real processes, servers, buses or bundles, or runs a real model or real time for
# seconds. A test is a system test when it is marked ``@pytest.mark.system``, lives in one of these
# modules, or uses one of these fixtures; mark a new test that takes more than ~2 s.
SYSTEM_MODULES = {
    "tests/desktop/test_accessibility.py",  # AT-SPI bus and a spawned app read by the accessibility client
    "tests/desktop/test_brltty.py",  # a real BRLTTY and Speech Dispatcher
    "tests/desktop/test_orca.py",  # real Orca on its own AT-SPI bus
    "tests/desktop/test_orca_service.py",  # a private D-Bus session bus
    "tests/desktop/test_speech_dispatcher.py",  # a real Speech Dispatcher server
    "tests/desktop/test_long_run.py",  # soak runs of the real app
    "tests/desktop/test_real_engine.py",  # the app with the real engine worker and the tiny model
    "tests/engine/test_llamacpp.py",  # llama.cpp's native decoder on converted GGUF models
    "tests/installers/test_linux_bundle.py",  # the frozen bundle
    "tests/test_offline_native.py",  # the app and engine processes under strace
    "tests/test_setup_script.py",  # scripts/setup.sh in a shell
    "tests/training/test_stage1_resume.py",  # multi-process training runs
}
SYSTEM_FIXTURES = {
    "backend_names",  # the real OCR engines reading text (tests/engine/test_ocr.py)
    "null_sound",  # a private PulseAudio server (tests/desktop/test_check.py)
    "recognizer",  # the real Whisper model (tests/engine/test_speech_recognition.py, tests/desktop/test_microphone.py)
}


def is_system(item: pytest.Item) -> bool:
    module = Path(str(item.fspath)).relative_to(ROOT).as_posix()
    return ("system" in item.keywords or module in SYSTEM_MODULES
            or not SYSTEM_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_system(item):
            item.add_marker(pytest.mark.system)
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def convert_reference(out_dir: Path, qformer: bool = True) -> Path:
    """Convert the official-format parity checkpoints into a Lumen model directory."""
    from engine.minigpt4.converter import convert_official
    from engine.minigpt4.config import tiny

    ckpt = REFERENCE / "checkpoints"
    convert_official(
        out_dir, config=tiny(qformer=qformer), eva_vit=ckpt / "eva_vit_g.pth",
        blip2=ckpt / "blip2_pretrained_flant5xxl.pth" if qformer else None,
        projection=ckpt / ("pretrained_minigpt4_tiny.pth" if qformer else "pretrained_minigpt4_llama2_tiny.pth"),
        llm_dir=ckpt / "vicuna-tiny",
    )
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, reference_dir: Path) -> Path:
    """The parity fixtures' tiny MiniGPT-4 (Q-Former, Vicuna template) as a model directory."""
    return convert_reference(tmp_path_factory.mktemp("models") / "tiny-main")


@pytest.fixture(scope="session")
def quantisable_model_dir(tmp_path_factory: pytest.TempPathFactory, reference_dir: Path) -> Path:
    """A tiny random MiniGPT-4 whose quantised layers are all multiples of 32 wide, as in every real LLaMA.

    bitsandbytes on CPUs with AVX512-BF16/AMX repacks 4-bit weights in blocks of 32 output rows and
    refuses other widths; the parity fixtures' MLP is 172 wide, so 4-bit tests use this model instead."""
    from dataclasses import replace

    from engine.minigpt4.bench import make_random_model_dir
    from engine.minigpt4.config import tiny

    config = tiny()
    config = replace(config, name="minigpt4-tiny-quantisable", llm={**config.llm, "intermediate_size": 192})
    tokenizer = REFERENCE / "checkpoints" / "vicuna-tiny" / "tokenizer.model"
    return make_random_model_dir(config, tmp_path_factory.mktemp("models") / "tiny-quantisable", tokenizer)


@pytest.fixture(scope="session")
def tiny_noqformer_model_dir(tmp_path_factory: pytest.TempPathFactory, reference_dir: Path) -> Path:
    """The Llama-2 flavour (no Q-Former, 4-token grouping, [INST] template)."""
    return convert_reference(tmp_path_factory.mktemp("models") / "tiny-noqformer", qformer=False)
