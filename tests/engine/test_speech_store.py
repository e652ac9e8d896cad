"""engine.store.speech_models: Whisper speech models fetched from a loopback fake hub (tests/fake_model_server.py),
verified against the hub's checksums, installed, re-checked, removed; the CLI; and a real model fetched
that way transcribes an espeak-ng question through the engine worker."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.store.catalogue import BUNDLED_SPEECH, CATALOGUE, SPEECH_CATALOGUE, get_speech_model
from engine.store.core import CHECKSUMS, SetupProgress
from engine.store.downloads import DownloadError, FailureKind
from engine.store.model_cli import main as cli_main
from engine.store.speech_models import MANIFEST, SpeechModelStore
from tests.fake_gpu import fake_nvidia_smi  # noqa: F401 (fixture)
from tests.fake_model_server import Behaviour, FakeServer, running_server

ROOT = Path(__file__).resolve().parents[2]
SPEC = get_speech_model("whisper-base.en")


def tiny_layout(model_bytes: int = 3_200_000) -> dict[str, bytes]:
    """A small folder in faster-whisper's layout (not a loadable model: bytes for the download path)."""
    return {
        "config.json": b'{"alignment_heads": [[1, 0]], "lang_ids": [], "suppress_ids": [], "suppress_ids_begin": []}',
        "model.bin": bytes(range(256)) * (model_bytes // 256),
        "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}',
        "vocabulary.txt": b"!\n\"\n#\n",
        "README.md": b"# not a model file: never fetched\n",
        ".gitattributes": b"*.bin filter=lfs diff=lfs merge=lfs -text\n",
    }


@pytest.fixture()
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # only the loopback fake hub is reachable


@pytest.fixture()
def hub(hub_online):  # type: ignore[no-untyped-def]
    fake = FakeServer()
    fake.add_hub_repo(SPEC.repo_id, tiny_layout())
    with running_server(fake) as srv:
        yield srv


def _fetched(srv: FakeServer) -> list[str]:
    return [path.rsplit("/", 1)[1] for method, path, _ in srv.log if method == "GET" and "/resolve/" in path]


def test_importing_the_speech_store_leaves_torch_out() -> None:
    code = ("import sys, engine.store.speech_models, engine.store.model_cli\n"
            "engine.store.speech_models.SpeechModelStore('/nonexistent').installed()\n"
            "bad = [m for m in ('torch', 'PySide6', 'faster_whisper', 'ctranslate2') if m in sys.modules]\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_speech_catalogue_is_consistent() -> None:
    from engine.perception import speech_recognition
    from engine.store import speech_models

    ids = [s.model_id for s in SPEECH_CATALOGUE]
    assert len(set(ids)) == len(ids) and not set(ids) & {s.model_id for s in CATALOGUE}
    assert len({s.repo_id for s in SPEECH_CATALOGUE}) == len(ids)
    assert speech_models.REQUIRED == speech_recognition.REQUIRED_MODEL_FILES
    for spec in SPEECH_CATALOGUE:
        size = spec.model_id.removeprefix("whisper-")
        assert spec.title == f"Whisper {size}" and spec.english_only == size.endswith(".en")
        assert spec.repo_id in (f"Systran/faster-whisper-{size}", "mobiuslabsgmbh/faster-whisper-large-v3-turbo")
        assert set(speech_recognition.REQUIRED_MODEL_FILES) <= set(spec.files)
        vocab = [f for f in spec.files if f.startswith("vocabulary.")]
        v3 = size.startswith("large-v3")  # 128 mel bins: feature settings in preprocessor_config.json
        assert vocab == (["vocabulary.json"] if v3 else ["vocabulary.txt"])
        assert ("preprocessor_config.json" in spec.files) == v3
        assert spec.approx_size_bytes > 2 * spec.params_millions * 1_000_000 and spec.ram_bytes > spec.approx_size_bytes / 2
        assert 0 < spec.relative_speed <= 10 and spec.slowdown >= 1 and spec.summary.endswith(".")
    # bigger models are bigger downloads; an English-only and a multilingual model of each size up to medium
    by_params = sorted(SPEECH_CATALOGUE, key=lambda s: s.params_millions)
    assert [s.approx_size_bytes for s in by_params] == sorted(s.approx_size_bytes for s in by_params)
    for size in ("base", "small", "medium"):
        assert not get_speech_model(f"whisper-{size}").english_only and get_speech_model(f"whisper-{size}.en").english_only
    assert get_speech_model("") is BUNDLED_SPEECH and BUNDLED_SPEECH.english_only and not BUNDLED_SPEECH.repo_id
    with pytest.raises(KeyError, match="whisper-small"):
        get_speech_model("whisper-huge")


def test_download_verifies_and_installs_only_the_model_files(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = SpeechModelStore(tmp_path / "models")
    events: list[SetupProgress] = []
    out = store.download(SPEC, events.append, endpoint=hub.endpoint)
    served = tiny_layout()
    assert out == store.model_dir("whisper-base.en") and store.installed() == ["whisper-base.en"]
    assert sorted(_fetched(hub)) == sorted(SPEC.files)  # README.md and .gitattributes are not fetched
    for name in SPEC.files:
        assert (out / name).read_bytes() == served[name]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["repo_id"] == SPEC.repo_id and manifest["english_only"]
    assert all("/resolve/" in url for url in manifest["files"].values())  # the pinned commit's addresses
    sums = json.loads((out / CHECKSUMS).read_text())
    assert sums["model.bin"] == {"sha256": hashlib.sha256(served["model.bin"]).hexdigest(), "size": len(served["model.bin"])}
    assert not store.partial_dir("whisper-base.en").exists()
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert store.problem("whisper-base.en") is None and store.verify("whisper-base.en").ok


def test_a_file_that_differs_from_the_hubs_checksum_is_deleted_not_installed(hub_online, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake = FakeServer()
    sha = fake.add_hub_repo(SPEC.repo_id, tiny_layout())
    bad = bytearray(tiny_layout()["model.bin"])
    bad[1000] ^= 0xFF  # the CDN sends damaged bytes of the right length
    fake.files[f"/{SPEC.repo_id}/resolve/{sha}/model.bin"] = bytes(bad)
    store = SpeechModelStore(tmp_path)
    with running_server(fake) as srv, pytest.raises(DownloadError) as err:
        store.download(SPEC, endpoint=srv.endpoint)
    assert err.value.kind is FailureKind.CHECKSUM and "model.bin" in err.value.detail
    assert not store.is_installed("whisper-base.en") and not store.model_dir("whisper-base.en").exists()
    partial = store.partial_dir("whisper-base.en")
    assert not (partial / "model.bin").exists() and not (partial / "model.bin.part").exists()


def test_cancel_keeps_the_part_and_the_next_run_resumes(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model_path = next(p for p in hub.files if p.endswith("/model.bin"))
    hub.behaviour[model_path] = Behaviour(delay=0.01)
    store, cancel = SpeechModelStore(tmp_path), threading.Event()

    def on_progress(p: SetupProgress) -> None:
        if p.label == "model.bin" and p.done > 0:
            cancel.set()  # the user pressed Cancel while model.bin arrived

    with pytest.raises(DownloadError) as err:
        store.download(SPEC, on_progress, cancel, endpoint=hub.endpoint)
    assert err.value.kind is FailureKind.CANCELLED and not store.is_installed("whisper-base.en")
    part = store.partial_dir("whisper-base.en") / "model.bin.part"
    kept = part.stat().st_size
    assert 0 < kept < len(tiny_layout()["model.bin"])
    hub.behaviour.clear()
    before = len(hub.log)
    store.download(SPEC, endpoint=hub.endpoint)
    ranges = [r for m, p, r in hub.log[before:] if m == "GET" and p == model_path]
    assert ranges == [f"bytes={kept}-"]  # continued, not restarted
    assert store.verify("whisper-base.en").ok


def test_a_repository_that_changed_since_the_last_attempt_starts_that_file_again(hub_online, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, cancel = SpeechModelStore(tmp_path), threading.Event()
    fake = FakeServer()
    fake.add_hub_repo(SPEC.repo_id, tiny_layout())
    fake.behaviour = {p: Behaviour(delay=0.01) for p in fake.files if p.endswith("/model.bin")}
    with running_server(fake) as srv, pytest.raises(DownloadError):
        store.download(SPEC, lambda p: cancel.set() if p.label == "model.bin" and p.done else None, cancel,
                       endpoint=srv.endpoint)
    assert (store.partial_dir("whisper-base.en") / "model.bin.part").stat().st_size > 0  # a piece of the old model.bin
    newer = FakeServer()
    newer.add_hub_repo(SPEC.repo_id, tiny_layout(model_bytes=3_300_000))  # the repository was updated since
    with running_server(newer) as srv:
        store.download(SPEC, endpoint=srv.endpoint)
        assert [r for m, p, r in srv.log if p.endswith("/model.bin")] == [None]  # from the start, no Range
    assert (store.model_dir("whisper-base.en") / "model.bin").read_bytes() == tiny_layout(3_300_000)["model.bin"]
    assert store.verify("whisper-base.en").ok


def test_refusals_are_clear(hub_online, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    fake = FakeServer()
    layout = tiny_layout()
    del layout["vocabulary.txt"]
    fake.add_hub_repo(SPEC.repo_id, layout)

    class Usage:
        free = 100_000_000  # less than the 200 MB margin

    with running_server(fake) as srv:
        with pytest.raises(DownloadError) as err:
            SpeechModelStore(tmp_path).download(SPEC, endpoint=srv.endpoint)
        assert err.value.kind is FailureKind.MISSING and "vocabulary.txt" in err.value.detail
        with pytest.raises(DownloadError) as err:
            SpeechModelStore(tmp_path).download(get_speech_model("whisper-small"), endpoint=srv.endpoint)
        assert err.value.kind in (FailureKind.AUTH, FailureKind.HTTP)  # not on this hub
        fake.add_hub_repo(SPEC.repo_id, tiny_layout())
        with pytest.raises(DownloadError) as err:
            SpeechModelStore(tmp_path, disk_usage=lambda p: Usage()).download(SPEC, endpoint=srv.endpoint)
        assert err.value.kind is FailureKind.DISK_FULL and _fetched(srv) == []
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError) as err:
        SpeechModelStore(tmp_path).download(SPEC)
    assert err.value.kind is FailureKind.OFFLINE
    with pytest.raises(ValueError):
        SpeechModelStore(tmp_path).download(BUNDLED_SPEECH)


def test_quick_check_full_verify_and_remove(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = SpeechModelStore(tmp_path)
    out = store.download(SPEC, endpoint=hub.endpoint)
    with open(out / "model.bin", "r+b") as f:
        f.seek(100)
        f.write(b"\x00")  # same size: only the full verify sees it
    assert store.problem("whisper-base.en") is None
    assert store.verify("whisper-base.en").problems == ("checksum differs: model.bin",)
    (out / "tokenizer.json").unlink()
    assert store.problem("whisper-base.en") == "missing: tokenizer.json"
    (out / "model.bin").write_bytes(b"short")
    assert store.problem("whisper-base.en") == "model.bin has the wrong size"
    assert "not installed" in (store.problem("whisper-small") or "")
    assert store.remove("whisper-base.en") == [out] and store.installed() == []
    with pytest.raises(KeyError):
        store.remove("../../etc")


def test_cli_lists_downloads_verifies_and_removes_speech_models(hub, fake_nvidia_smi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    root = str(tmp_path)
    assert cli_main(["--root", root, "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["speech_models"]}
    assert set(rows) == {s.model_id for s in SPEECH_CATALOGUE}
    assert rows["whisper-small"]["english_only"] is False and rows["whisper-small.en"]["english_only"] is True
    assert cli_main(["--root", root, "download", "whisper-base.en", "--endpoint", hub.endpoint]) == 0
    captured = capsys.readouterr()
    assert "Installed Whisper base.en in" in captured.out and "Settings, Speech" in captured.out
    assert "downloading: 100 percent" in captured.err
    assert cli_main(["--root", root, "list"]) == 0
    text = capsys.readouterr().out
    assert "bundled: Whisper tiny.en. English only." in text
    assert "whisper-base.en: Whisper base.en. English only. Installed." in text
    assert "whisper-large-v3: Whisper large-v3. Many languages. Not installed." in text
    assert cli_main(["--root", root, "verify", "whisper-base.en"]) == 0
    assert "all 4 files are intact" in capsys.readouterr().out
    assert cli_main(["--root", root, "remove", "whisper-base.en"]) == 0
    assert not SpeechModelStore(tmp_path).installed()


@pytest.mark.system
def test_a_real_whisper_model_fetched_from_the_hub_transcribes_through_the_worker(hub_online, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The bundled tiny.en files, served as if they were Systran/faster-whisper-base.en (no real
    base.en weights exist on this machine), go through download -> verify -> install; the engine
    worker then transcribes an espeak-ng question with ``Transcribe.model_path`` set to the folder,
    and refuses German with that English-only model."""
    from engine.perception import speech_recognition
    from engine.protocol import ErrorKind, Failed, Transcribe, Transcribed
    from engine.handle import run_in_thread
    from engine.worker import serve
    from tests.speech_samples import QUESTIONS, normalise, spoken_wav

    try:
        bundled = speech_recognition.default_model_path()
    except speech_recognition.SpeechInputUnavailable as exc:
        pytest.skip(f"voice extra not installed: {exc}")
    fake = FakeServer()
    fake.add_hub_repo(SPEC.repo_id, {p.name: p.read_bytes() for p in bundled.iterdir() if p.is_file()})
    store = SpeechModelStore(tmp_path)
    with running_server(fake) as srv:
        out = store.download(SPEC, endpoint=srv.endpoint)
    assert store.verify("whisper-base.en").ok
    worker = run_in_thread(serve)
    try:
        worker.conn.send(Transcribe(1, spoken_wav(QUESTIONS[0]), "en", model_path=str(out)))
        answer = worker.recv(60)
        assert isinstance(answer, Transcribed) and normalise(answer.text) == QUESTIONS[0]
        assert speech_recognition.get_recognizer(out).model_path == out.resolve()  # that folder's model did it
        worker.conn.send(Transcribe(2, spoken_wav(QUESTIONS[0]), "de", model_path=str(out)))
        refused = worker.recv(60)
        assert isinstance(refused, Failed) and refused.kind is ErrorKind.UNAVAILABLE and "English only" in refused.detail
    finally:
        worker.stop()


def test_a_folder_the_user_already_has_is_imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "from-another-computer"
    folder.mkdir()
    for name, data in tiny_layout(1000).items():
        (folder / name).write_bytes(data)
    store = SpeechModelStore(tmp_path / "models")
    with pytest.raises(DownloadError) as err:  # a large-v3 folder needs preprocessor_config.json, vocabulary.json
        store.import_folder(get_speech_model("whisper-large-v3"), folder)
    assert err.value.kind is FailureKind.MISSING and "preprocessor_config.json" in err.value.detail
    assert cli_main(["--root", str(tmp_path / "models"), "import", str(folder), "--model", "whisper-small.en"]) == 0
    assert "Installed Whisper small.en in" in capsys.readouterr().out
    assert store.installed() == ["whisper-small.en"] and store.verify("whisper-small.en").ok
    out = store.model_dir("whisper-small.en")
    assert sorted(p.name for p in out.iterdir()) == sorted([*SPEC.files, CHECKSUMS, MANIFEST])  # no README.md
    assert json.loads((out / MANIFEST).read_text())["files"]["model.bin"] == f"imported from {folder / 'model.bin'}"
    assert not list((store.speech_root / ".downloads").iterdir())


def test_switching_speech_models_frees_the_least_recently_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user trying several models must not end up holding all of them in the engine's memory."""
    from collections import OrderedDict

    from engine.perception import speech_recognition

    try:
        bundled = speech_recognition.default_model_path()
    except speech_recognition.SpeechInputUnavailable as exc:
        pytest.skip(f"voice extra not installed: {exc}")
    monkeypatch.setattr(speech_recognition, "_recognizers", OrderedDict())
    folders = []
    for name in ("a", "b", "c"):
        folder = tmp_path / name
        folder.mkdir()
        for f in bundled.iterdir():
            (folder / f.name).symlink_to(f)
        folders.append(folder)
    first = speech_recognition.get_recognizer(folders[0])
    speech_recognition.get_recognizer(folders[1])
    assert speech_recognition.get_recognizer(folders[0]) is first  # reused, and now the most recent
    speech_recognition.get_recognizer(folders[2])
    assert list(speech_recognition._recognizers) == [folders[0], folders[2]]  # b went
    assert speech_recognition.KEEP_LOADED == 2
