"""The setup wizard driven from the keyboard with pytest-qt, against the loopback fake hub/file
server serving the parity fixtures' official files, and the engine's real converter."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QListWidget, QPlainTextEdit, QProgressBar, QWidget

from desktop import messages as m
from desktop.setup_jobs import PercentAnnouncer
from desktop.widgets.setup_wizard import SetupWizard
from desktop.speech_output.speaker import Priority
from engine.store.catalogue import GB, HubRepo, get_model
from engine.store.hardware import Gpu, Hardware
from engine.store.model_store import ModelStore
from tests.fake_model_server import Behaviour, FakeServer, running_server

REPO = "Vision-CAIR/vicuna-7b"
RTX_3060 = Hardware((Gpu(0, "NVIDIA GeForce RTX 3060", 12 * GB, int(11.8 * GB), "cuda"),), 32 * GB, "test")


class Spoken:
    def __init__(self) -> None:
        self.items: list[tuple[str, Priority]] = []

    def __call__(self, text: str, priority: Priority) -> None:
        self.items.append((text, priority))

    @property
    def texts(self) -> list[str]:
        return [t for t, _ in self.items]


def make(qtbot, tmp_path: Path, spec=None, hardware: Hardware = RTX_3060, **kw) -> tuple[SetupWizard, Spoken]:  # noqa: ANN001
    spoken = Spoken()
    catalogue = (spec,) if spec is not None else (get_model("vicuna0-7b"), get_model("vicuna0-13b"), get_model("llama2-7b"))
    wizard = SetupWizard(spoken, ModelStore(tmp_path / "models"), catalogue, detect_hardware=lambda: hardware,
                         announcer=PercentAnnouncer(step=10, min_interval=0), **kw)
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.waitUntil(lambda: wizard.hardware is not None and wizard.download_button.isEnabled(), timeout=5000)
    return wizard, spoken


def test_every_control_is_named_and_reachable_by_keyboard(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    wizard, _ = make(qtbot, tmp_path)
    controls = [w for w in wizard.findChildren(QWidget) if isinstance(w, (QAbstractButton, QComboBox, QLineEdit, QListWidget, QPlainTextEdit, QProgressBar))]
    assert len(controls) >= 9
    for w in controls:
        assert w.accessibleName() and "&" not in w.accessibleName(), w
        assert w.accessibleDescription(), w
        if not isinstance(w, QProgressBar):
            assert w.focusPolicy() & Qt.FocusPolicy.TabFocus, w
    for button in (wizard.download_button, wizard.import_button, wizard.add_button, wizard.cancel_button, wizard.close_button):
        assert "&" in button.text()  # an Alt+letter shortcut


def test_details_show_sizes_memory_and_recommendation(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    wizard, _ = make(qtbot, tmp_path)
    text = wizard.details.toPlainText()
    assert "NVIDIA GeForce RTX 3060" in text and "Recommended on this computer: 4-bit" in text
    assert "full precision" in text and "8-bit" in text and "Processor only" in text
    assert wizard.precision.currentText() == "4-bit (recommended)"
    assert wizard.chosen_runtime() == ("nf4", "cuda")
    wizard.models.setFocus()
    qtbot.keyClick(wizard.models, Qt.Key.Key_Down)  # keyboard: the 13B model
    assert "Vicuna 13B" in wizard.details.toPlainText()
    assert "processor only" in wizard.details.toPlainText()  # 13B does not fit 12 GB even in 4-bit
    assert wizard.chosen_runtime() == ("none", "cpu")
    assert not wizard.token.isVisible()  # no token asked for the Vicuna models
    qtbot.keyClick(wizard.models, Qt.Key.Key_Down)
    assert "hf auth login" in wizard.details.toPlainText()
    assert wizard.token.isVisible() and wizard.token.echoMode() is QLineEdit.EchoMode.Password


def test_no_gpu_says_so_plainly(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    wizard, _ = make(qtbot, tmp_path, hardware=Hardware((), 64 * GB, "none", "no GPU"))
    assert m.NO_GPU in wizard.details.toPlainText()
    assert "minutes instead of seconds" in wizard.details.toPlainText()
    assert [wizard.precision.itemText(i) for i in range(wizard.precision.count())] == ["processor only (recommended)"]


@pytest.fixture()
def served(reference_dir: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # only the loopback fake hub is reachable
    ck = reference_dir / "checkpoints"
    fake = FakeServer()
    fake.add_hub_repo(REPO, {p.name: p.read_bytes() for p in (ck / "vicuna-tiny").iterdir()})
    for name in ("eva_vit_g.pth", "blip2_pretrained_flant5xxl.pth"):
        fake.files[f"/lavis/{name}"] = (ck / name).read_bytes()
    fake.files["/uc"] = (ck / "pretrained_minigpt4_tiny.pth").read_bytes()
    with running_server(fake) as srv:
        base = get_model("vicuna0-7b")
        files = tuple(dataclasses.replace(f, url=srv.url("/uc") if "drive" in f.url else srv.url(f"/lavis/{f.name}")) for f in base.files)
        yield srv, dataclasses.replace(base, llm=HubRepo(REPO), files=files), ck


@pytest.mark.system
def test_download_with_progress_and_spoken_percentages(qtbot, tmp_path: Path, served) -> None:  # noqa: ANN001
    srv, spec, _ = served
    wizard, spoken = make(qtbot, tmp_path, spec, endpoint=srv.endpoint, preset="tiny")
    with qtbot.waitSignal(wizard.model_ready, timeout=120_000) as ready:
        qtbot.keyClick(wizard.download_button, Qt.Key.Key_Space)  # keyboard activation
    model_dir, quantization, device = ready.args
    assert Path(model_dir, "lumen_model.json").is_file() and (quantization, device) == ("nf4", "cuda")
    assert wizard.progress.value() == 100 and "Installed." in wizard.models.item(0).text()
    percents = [t for t in spoken.texts if t.startswith("Downloading, ")]
    assert percents and percents == sorted(percents, key=lambda t: int(t.split()[1]))
    assert all(p is Priority.NORMAL for t, p in spoken.items if t in percents)  # polite
    assert spoken.texts[0].startswith("Starting download") and spoken.texts[-1] == "MiniGPT-4 with Vicuna 7B is ready."
    assert m.CONVERTING in spoken.texts
    assert not (tmp_path / "models" / ".downloads" / "Vision-CAIR__vicuna-7b").exists()  # converted: LLM download freed
    qtbot.waitUntil(lambda: wizard.download_button.isEnabled())


def test_cancel_by_escape_keeps_parts_and_says_so(qtbot, tmp_path: Path, served) -> None:  # noqa: ANN001
    srv, spec, _ = served
    slow = {p: Behaviour(delay=0.5) for p in srv.files if p.endswith(".bin")}
    srv.behaviour.update(slow)
    wizard, spoken = make(qtbot, tmp_path, spec, endpoint=srv.endpoint, preset="tiny")
    wizard.download_button.click()
    qtbot.waitUntil(lambda: any(path.endswith(".bin") for _, path, _ in srv.log), timeout=10_000)
    qtbot.keyClick(wizard, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: m.CANCELLED in spoken.texts, timeout=10_000)
    assert dict(spoken.items)[m.CANCELLED] is Priority.NOW
    assert wizard.isVisible()  # the first Escape only cancelled
    qtbot.waitUntil(lambda: wizard.download_button.isEnabled())
    assert list((tmp_path / "models" / ".downloads").rglob("*.part"))  # kept for resuming


@pytest.mark.system
def test_import_reports_missing_files_then_converts(qtbot, tmp_path: Path, reference_dir: Path) -> None:  # noqa: ANN001
    ck = reference_dir / "checkpoints"
    folder = tmp_path / "official"
    folder.mkdir()
    shutil.copy(ck / "pretrained_minigpt4_tiny.pth", folder / "prerained_minigpt4_7b.pth")
    shutil.copytree(ck / "vicuna-tiny", folder / "vicuna-7b")
    wizard, spoken = make(qtbot, tmp_path, get_model("vicuna0-7b"), pick_folder=lambda: folder, preset="tiny")
    wizard.import_button.click()
    qtbot.waitUntil(lambda: any(t.startswith("Some files are missing") for t in spoken.texts), timeout=10_000)
    missing = next(t for t in spoken.texts if t.startswith("Some files are missing"))
    assert "eva_vit_g.pth" in missing and "blip2_pretrained_flant5xxl.pth" in missing and "projection" not in missing
    qtbot.waitUntil(lambda: wizard.import_button.isEnabled())
    for name in ("eva_vit_g.pth", "blip2_pretrained_flant5xxl.pth"):
        shutil.copy(ck / name, folder / name)
    with qtbot.waitSignal(wizard.model_ready, timeout=120_000) as ready:
        wizard.import_button.click()
    assert Path(ready.args[0]) == tmp_path / "models" / "vicuna0-7b"
    assert ModelStore(tmp_path / "models").verify("vicuna0-7b").ok


@pytest.mark.system
def test_drive_refusal_asks_for_the_browser_then_add_file(qtbot, tmp_path: Path, served) -> None:  # noqa: ANN001
    srv, spec, ck = served
    srv.behaviour["/uc"] = Behaviour(html=True)
    fetched = tmp_path / "browser" / "prerained_minigpt4_7b.pth"
    fetched.parent.mkdir()
    shutil.copy(ck / "pretrained_minigpt4_tiny.pth", fetched)
    wizard, spoken = make(qtbot, tmp_path, spec, endpoint=srv.endpoint, preset="tiny", pick_file=lambda: fetched)
    wizard.download_button.click()
    qtbot.waitUntil(lambda: any("web browser" in t for t in spoken.texts), timeout=30_000)
    assert "drive.google.com/file/d/1RY9jV0dyqLX-o38LrumkKRh6Jtaop58R" in spoken.texts[-1]
    qtbot.waitUntil(lambda: wizard.add_button.isEnabled())
    wizard.add_button.click()
    assert spoken.texts[-1] == "Added prerained_minigpt4_7b.pth."
    with qtbot.waitSignal(wizard.model_ready, timeout=120_000):
        wizard.download_button.click()


def test_percent_announcer_throttles() -> None:
    now = [0.0]
    a = PercentAnnouncer(step=10, min_interval=5.0, clock=lambda: now[0])
    said = []
    for i in range(101):
        now[0] += 0.5  # 0.5 s per percent
        said.append(a.feed("downloading", i / 100))
    assert [s for s in said if s is not None] == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    a.reset()
    now[0] += 100
    assert a.feed("downloading", 0.05) is None and a.feed("verifying", 0.5) is None  # new stage: interval restarts


def test_wizard_and_check_modules_do_not_import_torch(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    code = ("import sys, desktop.widgets.setup_wizard, desktop.check\n"
            "desktop.check.check_model(None); desktop.check.check_speech()\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LUMEN_MODELS_DIR": str(tmp_path)}  # config: isolated by conftest
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]


def test_unknown_memory_is_said_in_the_wizard() -> None:
    from desktop.messages import recommendation_text
    from engine.store.catalogue import get_model
    from engine.store.hardware import Hardware, recommend

    rec = recommend(get_model("vicuna0-7b"), Hardware((), None, "none"))
    assert "could not be read" in recommendation_text(rec)
