"""Which model Lumen loads (engine.store.model_choice), and that the app, ``lumen models``, ``lumen --check``
and ``python -m engine describe`` all follow it: the real app under Xvfb loads a model installed with
``lumen models import`` and names it; with only the demo model it says it is a demo and offers the
setup wizard on the first start only."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from desktop import messages, settings as settings_store
from desktop.settings import Settings
from engine.store import model_choice
from engine.store.core import CHECKSUMS
from engine.store.locations import demo_model_dir
from engine.store.model_choice import DEMO_TITLE, Origin, choose
from engine.store.model_store import ModelStore
from tests.desktop.conftest import build_app


def fake_model(folder: Path, name: str, installed_at: float | None = None) -> Path:
    """The files ``choose`` looks at (a real load is tested below with converted weights)."""
    (folder / "llm").mkdir(parents=True)
    for file in ("visual.safetensors", "tokenizer.model"):
        (folder / file).write_bytes(b"x")
    (folder / "lumen_model.json").write_text(json.dumps({"format": "lumen-minigpt4", "config": {"name": name}}))
    (folder / CHECKSUMS).write_text("{}")
    if installed_at is not None:
        os.utime(folder / CHECKSUMS, (installed_at, installed_at))
    return folder


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(Path(os.environ["LUMEN_MODELS_DIR"]))


# ---------------------------------------------------------------- the rule
def test_the_model_installed_last_is_used_then_the_demo(store: ModelStore, tmp_path: Path) -> None:
    assert choose("", store).demo and choose("", store).origin is Origin.DEMO
    now = time.time()
    fake_model(store.model_dir("vicuna0-13b"), "minigpt4-vicuna0-13b", now - 100)
    fake_model(store.model_dir("vicuna0-7b"), "minigpt4-vicuna0-7b", now)
    choice = choose("", store)
    assert (choice.path, choice.origin, choice.title, choice.demo) == (
        store.model_dir("vicuna0-7b"), Origin.STORE, "MiniGPT-4 with Vicuna 7B", False)
    assert choice.installed == ("vicuna0-7b", "vicuna0-13b") and choice.notice is None
    fake_model(store.model_dir("vicuna0-7b-nf4"), "minigpt4-vicuna0-7b", now + 100)  # lumen models quantize
    assert choose("", store).path == store.model_dir("vicuna0-7b-nf4")
    (store.model_dir("vicuna0-7b-nf4") / "tokenizer.model").unlink()  # incomplete: skipped
    assert choose("", store).path == store.model_dir("vicuna0-7b")
    assert choose("", ModelStore(tmp_path / "empty"), demo=tmp_path / "no-demo").origin is Origin.NONE


def test_the_settings_choice_wins_and_a_gone_folder_is_said(store: ModelStore, tmp_path: Path) -> None:
    fake_model(store.model_dir("vicuna0-7b"), "minigpt4-vicuna0-7b")
    mine = fake_model(tmp_path / "my models" / "thirteen", "minigpt4-vicuna0-13b")
    choice = choose(str(mine), store)
    assert (choice.path, choice.origin, choice.title, choice.notice) == (mine, Origin.SETTINGS, "MiniGPT-4 with Vicuna 13B", None)
    assert choose(str(demo_model_dir()), store).demo  # the demo, even when chosen, is said to be one
    shutil.rmtree(mine)
    gone = choose(str(mine), store)
    assert gone.notice and str(mine) in gone.notice and "missing or incomplete" in gone.notice
    assert gone.path == store.model_dir("vicuna0-7b")  # Lumen still answers, with the installed model


def test_the_notice_goes_through_the_callers_translator(store: ModelStore, tmp_path: Path) -> None:
    gone = choose(str(tmp_path / "gone"), store, translate=lambda text: f"[{text}]")  # the app passes messages.tr
    assert gone.notice == f"[{model_choice.CHOSEN_MODEL_UNUSABLE}]".format(folder=tmp_path / "gone")


@pytest.mark.parametrize("content", [
    None, '{"model_dir": "/my/models/7b", "schema_version": 2}', '{"model_dir": "/my/models/7b"}',  # version 1
    '{"model_dir": "/my/models/7b", "schema_version": 99}', '{"model_dir": 5}', '{"model_dir": "/x", ',
    "[1, 2]", b"\xff\xfe{}", "a folder", " " * (1024 * 1024 + 1)])
def test_the_engine_reads_the_settings_model_folder_as_the_app_does(tmp_path: Path, content: str | bytes | None) -> None:
    """engine.store.model_choice reads one value of the desktop's settings file; it must agree with
    desktop.settings.load on every kind of file (and leave a damaged one where it is)."""
    path = tmp_path / "config" / "settings.json"
    path.parent.mkdir(exist_ok=True)
    if content == "a folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    before = sorted(p.name for p in path.parent.iterdir())
    read = model_choice.saved_model_dir()  # the default location: LUMEN_CONFIG_DIR (tests/conftest.py)
    assert sorted(p.name for p in path.parent.iterdir()) == before  # only read
    assert read == settings_store.load(path).settings.model_dir


def test_titles_and_the_wizard_setting(store: ModelStore, tmp_path: Path) -> None:
    assert model_choice.model_title(demo_model_dir()) == DEMO_TITLE
    tiny_as_7b = fake_model(store.model_dir("vicuna0-7b"), "minigpt4-tiny")  # named by its store folder
    assert model_choice.model_title(tiny_as_7b) == "MiniGPT-4 with Vicuna 7B"
    assert model_choice.model_title(fake_model(tmp_path / "x", "my-own-model")) == "my-own-model"
    assert model_choice.setting_for(tiny_as_7b, store) == ""  # a store model: the automatic rule picks it
    assert model_choice.setting_for(tmp_path / "x", store) == str(tmp_path / "x")


def test_ready_messages_name_the_model_and_where_it_runs(store: ModelStore) -> None:
    fake_model(store.model_dir("vicuna0-7b"), "minigpt4-vicuna0-7b")
    choice = choose("", store)
    assert messages.model_ready_text(choice, "cuda:0", "nf4") == "Model ready: MiniGPT-4 with Vicuna 7B, 4-bit, on the graphics card."
    assert messages.model_ready_text(choice, "cpu", "none") == (
        "Model ready: MiniGPT-4 with Vicuna 7B, on the processor, so answers will be slow.")
    demo = messages.model_ready_text(choose("", ModelStore(store.root / "none")), "cpu", "none")
    assert demo.startswith("Model ready. This is the small demo model: it only knows coloured shapes")
    assert "Tools, Set up model" in demo and "Alt+T, then M" in demo


# ---------------------------------------------------------------- the command line
@pytest.mark.system
def test_models_list_shows_what_lumen_uses(store: ModelStore, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.store.model_cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "Lumen uses: the small demo model" in out and "it is not MiniGPT-4" in out
    fake_model(store.model_dir("vicuna0-7b"), "minigpt4-vicuna0-7b")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"Lumen uses: MiniGPT-4 with Vicuna 7B, the model installed last ({store.model_dir('vicuna0-7b')})." in out
    assert "vicuna0-7b: MiniGPT-4 with Vicuna 7B. Installed, used by Lumen." in out
    assert main(["list", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["in_use"]["origin"] == "store" and report["in_use"]["demo"] is False
    assert [m["id"] for m in report["models"] if m["in_use"]] == ["vicuna0-7b"]


def test_engine_describe_defaults_to_the_model_the_app_uses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.__main__ import main

    Image.new("RGB", (112, 112), "white").save(tmp_path / "photo.png")
    assert main(["describe", str(tmp_path / "photo.png"), "--greedy", "--max-new-tokens", "8", "--device", "cpu"]) == 0
    out = capsys.readouterr()
    assert f"using the small demo model (it only knows coloured shapes), {demo_model_dir()}" in out.err
    assert out.out.strip()


def test_lumen_help_mentions_the_model_commands(capsys: pytest.CaptureFixture[str]) -> None:
    import desktop.__main__ as entry

    with pytest.raises(SystemExit) as exit_:
        entry.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "lumen models list" in out and "lumen models download vicuna0-7b" in out and "lumen --check" in out


# ---------------------------------------------------------------- the app
def wizards(lumen) -> list:  # noqa: ANN001
    from desktop.widgets.setup_wizard import SetupWizard

    return [w for w in lumen.extensions if isinstance(w, SetupWizard)]


def close(lumen) -> None:  # noqa: ANN001
    for wizard in wizards(lumen):
        wizard.reject()
    lumen.shutdown()


def ready_said(lumen) -> str:  # noqa: ANN001
    return next(t for t in lumen.speaker.texts if t.startswith("Model ready"))


@pytest.fixture(scope="module")
def official_files(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parity fixtures' tiny checkpoints, laid out as official MiniGPT-4 7B files."""
    ck, folder = reference_dir / "checkpoints", tmp_path_factory.mktemp("official")
    for name in ("eva_vit_g.pth", "blip2_pretrained_flant5xxl.pth"):
        shutil.copy(ck / name, folder / name)
    shutil.copy(ck / "pretrained_minigpt4_tiny.pth", folder / "prerained_minigpt4_7b.pth")
    shutil.copytree(ck / "vicuna-tiny", folder / "vicuna-7b")
    return folder


@pytest.mark.system
def test_app_loads_the_model_lumen_models_import_installed_and_names_it(qtbot, tmp_path: Path, store: ModelStore,
                                                                        official_files: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from desktop import app
    from engine import worker
    from engine.store.model_cli import main
    from engine.protocol import ModelReady

    assert main(["import", str(official_files), "--model", "vicuna0-7b", "--preset", "tiny"]) == 0
    assert "Lumen uses this model from its next start." in capsys.readouterr().out
    lumen = build_app(qtbot, tmp_path / "settings.json", serve=worker.serve, start=False)  # the real engine, in a thread
    ready: list[ModelReady] = []
    lumen.engine.event.connect(lambda e: ready.append(e) if isinstance(e, ModelReady) else None)
    try:
        app.start(lumen, hotkeys=False)  # a first start, with the wizard allowed
        qtbot.waitUntil(lambda: bool(ready), timeout=120000)
        qtbot.waitUntil(lambda: any(t.startswith("Model ready") for t in lumen.speaker.texts), timeout=5000)
        assert ready[0].summary.startswith("minigpt4-tiny, cpu")  # the imported weights, not the demo's
        assert ready_said(lumen) == "Model ready: MiniGPT-4 with Vicuna 7B, on the processor, so answers will be slow."
        assert lumen.window.status_label.text() == ready_said(lumen)  # also written, for braille
        assert wizards(lumen) == []  # a real model: nothing to offer
    finally:
        close(lumen)


@pytest.mark.system
def test_only_the_demo_says_so_and_offers_the_wizard_on_the_first_start_only(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    from desktop import app

    for start in ("first", "second"):
        lumen = build_app(qtbot, tmp_path / "settings.json", start=False)
        try:
            app.start(lumen, hotkeys=False)
            qtbot.waitUntil(lambda: any(t.startswith("Model ready") for t in lumen.speaker.texts), timeout=10000)
            assert [r.model_dir for r in lumen.scripted.requests if type(r).__name__ == "LoadModel"] == [str(demo_model_dir())]
            said = ready_said(lumen)
            assert said.startswith("Model ready. This is the small demo model") and "Set up model" in said
            offered = wizards(lumen)
            if start == "first":
                assert len(offered) == 1 and offered[0].isVisible()
                assert (tmp_path / "settings.json").exists()  # remembered: the next start is not a first one
            else:
                assert offered == []
        finally:
            close(lumen)


def test_a_model_from_the_wizard_is_used_at_once_and_said(qtbot, tmp_path: Path, store: ModelStore) -> None:  # noqa: ANN001
    lumen = build_app(qtbot, tmp_path / "settings.json")
    try:
        qtbot.waitUntil(lambda: any(t.startswith("Model ready") for t in lumen.speaker.texts), timeout=10000)
        lumen.speaker.spoken.clear()
        installed = fake_model(store.model_dir("vicuna0-13b"), "minigpt4-vicuna0-13b")
        lumen.use_installed_model(str(installed), "nf4", "cuda")  # what the wizard's model_ready carries
        qtbot.waitUntil(lambda: any(t.startswith("Model ready") for t in lumen.speaker.texts), timeout=10000)
        loads = [r for r in lumen.scripted.requests if type(r).__name__ == "LoadModel"]
        assert loads[-1].model_dir == str(installed) and loads[-1].quantization == "nf4"
        assert ready_said(lumen) == "Model ready: MiniGPT-4 with Vicuna 13B, on the processor, so answers will be slow."
        saved = settings_store.load(tmp_path / "settings.json").settings
        assert (saved.model_dir, saved.quantization, saved.device) == ("", "nf4", "cuda")  # automatic: newest
    finally:
        close(lumen)


def test_configured_folder_that_is_gone_is_said_at_start(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    from desktop import app

    settings_store.save(Settings(model_dir=str(tmp_path / "moved away")), tmp_path / "settings.json")
    lumen = build_app(qtbot, tmp_path / "settings.json", start=False)
    try:
        app.start(lumen, hotkeys=False)
        qtbot.waitUntil(lambda: any(t.startswith("Model ready") for t in lumen.speaker.texts), timeout=10000)
        said = lumen.speaker.texts
        gone = next(i for i, t in enumerate(said) if str(tmp_path / "moved away") in t)
        assert "missing or incomplete" in said[gone] and gone < said.index(ready_said(lumen))
        assert ready_said(lumen).startswith("Model ready. This is the small demo model")
        assert wizards(lumen) == []  # not a first start
    finally:
        close(lumen)
