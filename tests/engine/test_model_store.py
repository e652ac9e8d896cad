"""engine.store.model_store: the whole download -> verify -> convert path against a local fake hub and
file server that serve the parity fixtures' official files; import from a folder; verify; remove;
the CLI; and that none of it imports torch."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.store.catalogue import CATALOGUE, HubRepo, UrlFile, get_model
from engine.store.core import CHECKSUMS, SetupProgress
from engine.store.downloads import DownloadError, FailureKind
from engine.store.model_cli import main as cli_main
from engine.store.model_store import ModelStore
from engine.store.official_files import find_official_files, llm_flavour
from tests.fake_gpu import fake_nvidia_smi  # noqa: F401 (fixture)
from tests.fake_model_server import Behaviour, FakeServer, running_server

ROOT = Path(__file__).resolve().parents[2]
REPO = "Vision-CAIR/vicuna-7b"


def test_importing_the_store_leaves_torch_out() -> None:
    code = (
        "import sys, engine.store.model_store, engine.store.model_cli, engine.store.hardware, engine.store.official_files, "
        "engine.store.conversion_process, engine.store.catalogue, engine.store.downloads\n"
        "engine.store.model_store.ModelStore('/nonexistent').installed()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'PySide6' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_catalogue_is_complete_and_honest() -> None:
    assert [s.model_id for s in CATALOGUE] == ["vicuna0-7b", "vicuna0-13b", "llama2-7b"]
    for spec in CATALOGUE:
        names = {f.name for f in spec.files}
        assert "eva_vit_g.pth" in names
        assert ("blip2_pretrained_flant5xxl.pth" in names) == spec.has_qformer
        drive = [f for f in spec.files if "drive.google.com" in f.url]
        assert len(drive) == 1 and drive[0].browser_only_likely and drive[0].sha256 is None
        assert drive[0].size_bytes is None  # not published: we do not pretend to know it
    assert get_model("llama2-7b").llm.gated
    with pytest.raises(KeyError):
        get_model("gpt-5")


@pytest.fixture()
def served(reference_dir: Path):  # type: ignore[no-untyped-def]
    """The fixtures' official files: the tiny LLM as a hub repo, EVA/BLIP-2 as GCS files, the
    projection behind a Drive-like URL that answers with a web page."""
    ck = reference_dir / "checkpoints"
    fake = FakeServer()
    fake.add_hub_repo(REPO, {p.name: p.read_bytes() for p in (ck / "vicuna-tiny").iterdir()})
    for name in ("eva_vit_g.pth", "blip2_pretrained_flant5xxl.pth"):
        fake.files[f"/lavis/{name}"] = (ck / name).read_bytes()
        fake.behaviour[f"/lavis/{name}"] = Behaviour(send_goog_md5=True)
    fake.files["/uc"] = (ck / "pretrained_minigpt4_tiny.pth").read_bytes()
    fake.behaviour["/uc"] = Behaviour(html=True)
    with running_server(fake) as srv:
        base = get_model("vicuna0-7b")
        files = tuple(
            dataclasses.replace(f, url=srv.url("/uc") if "drive" in f.url else srv.url(f"/lavis/{f.name}"))
            for f in base.files
        )
        spec = dataclasses.replace(base, llm=HubRepo(REPO), files=files)
        yield srv, spec, ck


@pytest.fixture()
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # only the loopback fake hub is reachable


def test_download_fetches_verifies_and_reports_drive_file_for_the_browser(served, hub_online, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, spec, ck = served
    store = ModelStore(tmp_path / "models")
    events: list[SetupProgress] = []
    outcome = store.download(spec, events.append, endpoint=srv.endpoint)
    assert [f.name for f in outcome.missing_by_hand] == ["prerained_minigpt4_7b.pth"]
    assert outcome.official.missing(spec) == ("projection",)
    assert (store.hub_dir(spec.llm) / "tokenizer.model").read_bytes() == (ck / "vicuna-tiny" / "tokenizer.model").read_bytes()
    assert events and events[-1].label == "done"
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # every GCS file and LFS file got its SHA-256 recorded for later checks
    known = json.loads((store.downloads / "known_hashes.json").read_text())
    assert srv.url("/lavis/eva_vit_g.pth") in known
    # the user fetched the projection with a browser and adds it: now nothing is missing
    store.add_file(ck / "pretrained_minigpt4_tiny.pth")  # saved by the browser under another name
    assert store.official_for(spec).missing(spec) == ()
    # a second run downloads nothing again, not even the projection from Drive
    before = len(srv.log)
    again = store.download(spec, endpoint=srv.endpoint)
    assert again.missing_by_hand == () and again.official.missing(spec) == ()
    assert [e for e in srv.log[before:] if e[0] == "GET" and "/api/" not in e[1]] == []


def test_disk_space_is_checked_before_any_file_is_fetched(served, hub_online, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, spec, _ = served

    class Usage:
        free = 50_000_000  # far less than a converted 7B model

    store = ModelStore(tmp_path / "models", disk_usage=lambda p: Usage())
    with pytest.raises(DownloadError) as err:
        store.download(spec, endpoint=srv.endpoint)
    assert err.value.kind is FailureKind.DISK_FULL
    assert not any(m == "GET" and ("/resolve/" in path or "/lavis/" in path) for m, path, _ in srv.log)


def test_offline_mode_refuses_clearly(tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as err:  # conftest sets HF_HUB_OFFLINE=1
        ModelStore(tmp_path).download(get_model("vicuna0-7b"))
    assert err.value.kind is FailureKind.OFFLINE


def test_unknown_repo_is_auth_or_http(served, hub_online, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, spec, _ = served
    spec = dataclasses.replace(spec, llm=HubRepo("meta-llama/not-here"))
    with pytest.raises(DownloadError) as err:
        ModelStore(tmp_path).download(spec, endpoint=srv.endpoint)
    assert err.value.kind in (FailureKind.AUTH, FailureKind.HTTP)


def test_unreachable_hub_is_a_network_failure(hub_online, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(DownloadError) as err:
        ModelStore(tmp_path).download(get_model("vicuna0-7b"), endpoint=endpoint)
    assert err.value.kind is FailureKind.NETWORK


def _official_folder(ck: Path, dest: Path, skip: tuple[str, ...] = ()) -> Path:
    dest.mkdir(parents=True)
    for name in ("eva_vit_g.pth", "blip2_pretrained_flant5xxl.pth", "pretrained_minigpt4_tiny.pth"):
        if name not in skip:
            shutil.copy(ck / name, dest / name)
    if "llm" not in skip:
        shutil.copytree(ck / "vicuna-tiny", dest / "weights" / "vicuna")
    return dest


def test_import_finds_the_pieces_and_names_what_is_missing(reference_dir: Path, tmp_path: Path) -> None:
    ck = reference_dir / "checkpoints"
    found = find_official_files(_official_folder(ck, tmp_path / "all"), "vicuna0-7b")
    assert found.eva and found.qformer and found.projection and found.llm_dir
    assert found.llm_dir.name == "vicuna" and found.missing(get_model("vicuna0-7b")) == ()
    partial = find_official_files(_official_folder(ck, tmp_path / "some", skip=("eva_vit_g.pth", "llm")), "vicuna0-7b")
    assert partial.missing(get_model("vicuna0-7b")) == ("eva", "llm")
    assert partial.missing(get_model("llama2-7b")) == ("eva", "llm")  # no Q-Former needed there
    assert find_official_files(tmp_path / "nowhere").missing(get_model("vicuna0-7b")) == ("eva", "qformer", "projection", "llm")


def test_llm_flavour_from_config() -> None:
    assert llm_flavour({"hidden_size": 5120}) == "vicuna0-13b"
    assert llm_flavour({"hidden_size": 4096, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6}) == "vicuna0-7b"
    assert llm_flavour({"hidden_size": 4096, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5}) == "llama2-7b"
    assert llm_flavour({"hidden_size": 64}) is None


def test_conversion_failures_are_reported_not_raised_raw(reference_dir: Path, tmp_path: Path) -> None:
    from tests.engine import conversion_helpers as helpers

    spec = get_model("vicuna0-7b")
    found = find_official_files(_official_folder(reference_dir / "checkpoints", tmp_path / "src"), spec.model_id)
    store = ModelStore(tmp_path / "models")
    for converter, words in ((helpers.failing_converter, "expected (4096, 768)"), (helpers.crashing_converter, "exit code 3")):
        with pytest.raises(DownloadError) as err:
            store.install(spec, found, converter=converter)
        assert err.value.kind is FailureKind.CONVERSION and words in err.value.detail
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    with pytest.raises(DownloadError) as err:
        store.install(spec, found, cancel=cancel, converter=helpers.slow_converter)
    assert err.value.kind is FailureKind.CANCELLED
    assert not store.is_installed(spec.model_id)
    with pytest.raises(DownloadError) as err:
        store.install(spec, find_official_files(tmp_path / "nowhere"), converter=helpers.failing_converter)
    assert err.value.kind is FailureKind.MISSING


def _fake_installed(store: ModelStore, model_id: str) -> Path:
    """A model directory written by hand, then checksummed by the store's own code."""
    d = store.model_dir(model_id)
    (d / "llm").mkdir(parents=True)
    (d / "lumen_model.json").write_text("{}")
    (d / "llm" / "model.safetensors").write_bytes(b"x" * 5000)
    store._write_checksums(d, lambda p: None)
    return d


def test_verify_catches_damage_and_remove_deletes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ModelStore(tmp_path)
    d = _fake_installed(store, "vicuna0-7b")
    assert store.verify("vicuna0-7b").ok
    assert cli_main(["--root", str(tmp_path), "verify", "vicuna0-7b"]) == 0
    with open(d / "llm" / "model.safetensors", "r+b") as f:
        f.seek(100)
        f.write(b"y")
    report = store.verify("vicuna0-7b")
    assert not report.ok and report.problems == ("checksum differs: llm/model.safetensors",)
    assert cli_main(["--root", str(tmp_path), "verify", "vicuna0-7b"]) == 1
    assert "checksum differs" in capsys.readouterr().out
    (d / CHECKSUMS).unlink()
    assert not store.verify("vicuna0-7b").ok
    assert cli_main(["--root", str(tmp_path), "remove", "vicuna0-7b"]) == 0
    assert not d.exists() and store.installed() == []


def test_cli_list_and_import_report(tmp_path: Path, reference_dir: Path, fake_nvidia_smi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--root", str(tmp_path), "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "RTX 3060" in listing["gpus"]
    rec = {m["id"]: m["recommended"] for m in listing["models"]}
    assert rec["vicuna0-7b"] == {"device": "cuda", "precision": "nf4", "fits": True}
    assert cli_main(["--root", str(tmp_path), "list"]) == 0
    assert "Recommended here: 4-bit on the graphics card." in capsys.readouterr().out
    folder = _official_folder(reference_dir / "checkpoints", tmp_path / "src", skip=("blip2_pretrained_flant5xxl.pth",))
    assert cli_main(["--root", str(tmp_path), "import", str(folder), "--model", "vicuna0-7b"]) == 1
    err = capsys.readouterr().err
    assert "Missing: the BLIP-2 Q-Former blip2_pretrained_flant5xxl.pth" in err
    assert cli_main(["--root", str(tmp_path), "import", str(folder)]) == 2  # tiny LLM: model unknown


@pytest.mark.system
def test_download_then_convert_gives_a_loadable_offline_model(served, hub_online, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """End to end with the engine's real converter: fetched official files -> model directory ->
    checksums -> engine.minigpt4.loading.load_model, with the network guard and HF_HUB_OFFLINE back on."""
    srv, spec, ck = served
    srv.behaviour["/uc"] = Behaviour()  # this time Drive serves the projection itself
    store = ModelStore(tmp_path / "models")
    stages: list[str] = []
    outcome = store.download(spec, lambda p: stages.append(p.stage), endpoint=srv.endpoint)
    assert outcome.missing_by_hand == () and outcome.official.missing(spec) == ()
    out = store.install(spec, outcome.official, lambda p: stages.append(p.stage), preset="tiny")
    assert {"downloading", "converting", "verifying", "done"} <= set(stages)
    assert sorted(p.name for p in out.iterdir()) == sorted([CHECKSUMS, "llm", "lumen_model.json", "tokenizer.model", "visual.safetensors"])
    assert store.installed() == ["vicuna0-7b"] and store.verify("vicuna0-7b").ok
    assert not list(store.root.glob("*.converting*"))
    assert store.discard_llm_download(spec) == store.hub_dir(spec.llm)  # the model no longer needs it
    from engine.minigpt4.loading import load_model

    loaded = load_model(out, device="cpu", dtype="float32")
    assert loaded.config.qformer is not None


@pytest.mark.system
def test_cli_import_converts_a_folder(reference_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _official_folder(reference_dir / "checkpoints", tmp_path / "src")
    code = cli_main(["--root", str(tmp_path / "models"), "import", str(folder), "--model", "vicuna0-7b", "--preset", "tiny"])
    assert code == 0, capsys.readouterr().err
    assert "Installed in" in capsys.readouterr().out
    assert ModelStore(tmp_path / "models").verify("vicuna0-7b").ok


@pytest.mark.system
def test_wrong_projection_is_refused_by_the_converter(reference_dir: Path, tmp_path: Path) -> None:
    ck = reference_dir / "checkpoints"
    folder = _official_folder(ck, tmp_path / "src", skip=("pretrained_minigpt4_tiny.pth",))
    shutil.copy(ck / "pretrained_minigpt4_llama2_tiny.pth", folder / "pretrained_minigpt4_tiny.pth")  # Llama-2 shapes
    store = ModelStore(tmp_path / "models")
    with pytest.raises(DownloadError) as err:
        store.install(get_model("vicuna0-7b"), find_official_files(folder, "vicuna0-7b"), preset="tiny")
    assert err.value.kind is FailureKind.CONVERSION and "pretrained_minigpt4_tiny.pth" in err.value.detail
    assert store.installed() == [] and not list(store.root.glob("*.converting*"))


@pytest.mark.system
def test_prequantised_copy_loads_without_quantising_again(reference_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("bitsandbytes")
    from safetensors import safe_open

    from engine.minigpt4.loading import load_model
    from engine.protocol import Quantization

    folder = _official_folder(reference_dir / "checkpoints", tmp_path / "src")
    store = ModelStore(tmp_path / "models")
    assert cli_main(["--root", str(store.root), "import", str(folder), "--model", "vicuna0-7b", "--preset", "tiny"]) == 0
    assert cli_main(["--root", str(store.root), "quantize", "vicuna0-7b", "nf4", "--device", "cpu"]) == 0
    out = store.model_dir("vicuna0-7b-nf4")
    assert store.verify("vicuna0-7b-nf4").ok
    assert json.loads((out / "llm" / "config.json").read_text())["quantization_config"]["bnb_4bit_quant_type"] == "nf4"
    shard = next((out / "llm").glob("*.safetensors"))
    with safe_open(str(shard), "pt") as f:
        keys = list(f.keys())
    assert any("quant_state" in k for k in keys)  # stored quantised, not fp16
    loaded = load_model(out, device="cpu", dtype="float32", quantization=Quantization.NF4)
    layer = loaded.model.language_model.model.layers[0].self_attn.q_proj
    assert type(layer).__name__ == "Linear4bit"
    with pytest.raises(DownloadError) as err:
        store.prequantize("llama2-7b", "nf4")
    assert err.value.kind is FailureKind.MISSING
