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
    from engine.checkpoints import convert_official
    from engine.config import tiny

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
    assert areas == ["GPU", "Model", "Speech", "Speech input", "Screen reader", "Hotkeys"]
    assert out[1].startswith("GPU: ready. Found NVIDIA GeForce RTX 3060")
    assert out[2].startswith(f"Model: NOT READY. The model folder chosen in the settings, {tmp_path / 'gone'}, is missing")
    assert "Lumen uses the small demo model" in out[2]  # what answers instead, as what it is


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


def test_engine_failure_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "lumen_model.json").write_text("{}")
    item = check.check_engine(bad, device="cpu", timeout=120)
    assert item.ready is False and "could not load" in item.summary and "model_missing" in item.detail
