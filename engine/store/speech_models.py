"""Whisper speech models in the model store: an explicit download from the Hugging Face hub, verified,
then installed as a plain CTranslate2 folder that ``engine.perception.speech_recognition`` loads offline. Torch-free.

Layout under the store root (the same root as ``engine.store.model_store``)::

    <root>/speech/<model_id>/                the model: the catalogue's files, lumen_speech.json
                                             (where each file came from) and lumen_checksums.json
    <root>/speech/.downloads/<model_id>/     files being fetched (``.part`` files resume), plan.json

Every file is checked against the size and SHA-256 (LFS) or git blob id the hub reports for the
pinned commit (``engine.store.downloads``); a damaged file is deleted, never installed. The folder appears
under ``<root>/speech/<model_id>`` only when every file is complete (one rename), so a half-finished
download can never be chosen.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from engine.store.catalogue import SPEECH_CATALOGUE, HubRepo, SpeechModelSpec, get_speech_model
from engine.store.core import (CHECKSUMS, ProgressFn, SetupProgress, VerifyReport, hash_files, hub_items,
                               remaining_bytes, verify_checksums, write_checksums, write_json)
from engine.store.downloads import DownloadError, DownloadItem, FailureKind, check_free_space, download
from engine.store.locations import models_root

log = logging.getLogger(__name__)
SPEECH_DIR = "speech"
MANIFEST = "lumen_speech.json"
PLAN = "plan.json"
MARGIN_BYTES = 200_000_000  # a speech model is small; still never fill a disk to the last bytes
REQUIRED = ("model.bin", "config.json", "tokenizer.json")  # = engine.perception.speech_recognition.REQUIRED_MODEL_FILES


class SpeechModelStore:
    def __init__(self, root: Path | None = None, disk_usage: Callable[[str], object] = shutil.disk_usage) -> None:
        self.root = Path(root) if root else models_root()
        self.disk_usage = disk_usage

    # ------------------------------------------------------------ paths and state
    @property
    def speech_root(self) -> Path:
        return self.root / SPEECH_DIR

    def model_dir(self, model_id: str) -> Path:
        return self.speech_root / model_id

    def partial_dir(self, model_id: str) -> Path:
        return self.speech_root / ".downloads" / model_id

    def is_installed(self, model_id: str) -> bool:
        return bool(model_id) and (self.model_dir(model_id) / MANIFEST).is_file()

    def installed(self) -> list[str]:
        """Installed catalogue models, in catalogue order."""
        return [s.model_id for s in SPEECH_CATALOGUE if self.is_installed(s.model_id)]

    def problem(self, model_id: str) -> str | None:
        """A quick check before use (no hashing): None when the model folder is complete, else why not.
        ``verify`` re-reads every byte."""
        folder = self.model_dir(model_id)
        if not (folder / MANIFEST).is_file():
            return f"{model_id} is not installed in {folder}"
        try:
            sums = json.loads((folder / CHECKSUMS).read_text())
            for name, entry in sums.items():
                if (folder / name).stat().st_size != int(entry["size"]):
                    return f"{name} has the wrong size"
        except FileNotFoundError as exc:
            return f"missing: {Path(exc.filename or '').name}"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"the checksum list is damaged: {exc}"
        missing = [n for n in REQUIRED if n not in sums]
        return f"missing: {', '.join(missing)}" if missing else None

    # ------------------------------------------------------------ download and install
    def plan(self, spec: SpeechModelSpec, endpoint: str | None = None, token: str | None = None) -> list[DownloadItem]:
        """The catalogue's files as the hub lists them now (exact sizes and checksums, pinned commit)."""
        if not spec.repo_id:
            raise ValueError(f"{spec.title} is bundled, not downloaded")
        repo = HubRepo(spec.repo_id, spec.revision, allow_suffixes=tuple({"." + n.rsplit(".", 1)[1] for n in spec.files}),
                       prefer_safetensors=False)
        listed = {i.label: i for i in hub_items(repo, self.partial_dir(spec.model_id), endpoint, token)}
        missing = [n for n in spec.files if n not in listed]
        if missing:
            raise DownloadError(FailureKind.MISSING, f"{spec.repo_id} lacks {', '.join(missing)}",
                                f"https://huggingface.co/{spec.repo_id}")
        return [listed[n] for n in spec.files]

    def download(
        self,
        spec: SpeechModelSpec,
        on_progress: ProgressFn = lambda p: None,
        cancel: threading.Event | None = None,
        endpoint: str | None = None,
        token: str | None = None,
        retries: int = 4,
        backoff: float = 1.0,
    ) -> Path:
        """Fetch, verify and install ``spec``; returns the installed folder. Cancelling or a failure
        keeps the finished files and the ``.part`` file, and the next call resumes."""
        cancel = cancel or threading.Event()
        items = self.plan(spec, endpoint, token)
        partial = self.partial_dir(spec.model_id)
        partial.mkdir(parents=True, exist_ok=True)
        done_hashes = self._reconcile(partial, items)
        todo = [i for i in items if not i.dest.is_file()]
        total = sum(remaining_bytes(i) for i in todo)
        check_free_space(self.root, total + MARGIN_BYTES, self.disk_usage)
        done = 0
        for index, item in enumerate(todo, 1):

            def tick(n: int, label: str = item.label, index: int = index) -> None:
                nonlocal done
                done += n
                on_progress(SetupProgress("downloading", label, done, max(total, done), index, len(todo)))

            result = download(item, tick, cancel, retries=retries, backoff=backoff)
            done_hashes[item.label] = result.sha256
            write_json(partial / PLAN, {"expected": _expected(items), "sha256": done_hashes})
        on_progress(SetupProgress("downloading", "done", done, max(done, 1), len(todo), len(todo)))
        return self._install(spec, items, done_hashes, partial)

    def _reconcile(self, partial: Path, items: list[DownloadItem]) -> dict[str, str]:
        """Keep what an earlier attempt finished or started, unless the hub now promises other bytes
        for that file (the repository changed): then its old pieces are deleted."""
        try:
            state = json.loads((partial / PLAN).read_text())
            before, hashes = dict(state["expected"]), dict(state["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            before, hashes = {}, {}
        now = _expected(items)
        for item in items:
            part = item.dest.with_name(item.dest.name + ".part")
            stale = before.get(item.label) != now[item.label]
            if stale or (item.dest.is_file() and item.label not in hashes):
                for path in (item.dest, part) if stale else (item.dest,):
                    path.unlink(missing_ok=True)
                hashes.pop(item.label, None)
        write_json(partial / PLAN, {"expected": now, "sha256": hashes})
        return hashes

    def _install(self, spec: SpeechModelSpec, items: list[DownloadItem], hashes: dict[str, str], partial: Path) -> Path:
        (partial / PLAN).unlink()
        return self._place(spec, partial, hashes, {i.label: i.url for i in items})

    def import_folder(self, spec: SpeechModelSpec, folder: Path, on_progress: ProgressFn = lambda p: None) -> Path:
        """Install a faster-whisper folder the user already has (copied from another computer, or
        fetched with a browser from the model's hub page). Its files are copied and their checksums
        recorded; whether the weights are sound shows when the engine loads them."""
        missing = [n for n in spec.files if not (Path(folder) / n).is_file()]
        if missing:
            raise DownloadError(FailureKind.MISSING, f"{folder} lacks {', '.join(missing)}", str(folder))
        sources = {n: Path(folder) / n for n in spec.files}
        total = sum(p.stat().st_size for p in sources.values())
        check_free_space(self.root, total + MARGIN_BYTES, self.disk_usage)
        work = self.speech_root / ".downloads" / f"{spec.model_id}.import"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            for name, source in sources.items():
                shutil.copyfile(source, work / name)
            hashes = hash_files(work, sources, "", on_progress)
            return self._place(spec, work, hashes, {n: f"imported from {p}" for n, p in sources.items()})
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    def _place(self, spec: SpeechModelSpec, work: Path, hashes: dict[str, str], sources: dict[str, str]) -> Path:
        """Record checksums and provenance in ``work``, then make it the installed folder in one rename."""
        write_checksums(work, {name: hashes[name] for name in spec.files})
        write_json(work / MANIFEST, {
            "model_id": spec.model_id, "title": spec.title, "repo_id": spec.repo_id,
            "english_only": spec.english_only, "files": sources,
        })
        out = self.model_dir(spec.model_id)
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
        log.info("installed speech model %s in %s", spec.model_id, out)
        return out

    # ------------------------------------------------------------ verify / remove
    def verify(self, model_id: str, on_progress: ProgressFn = lambda p: None) -> VerifyReport:
        """Re-read every file of an installed speech model against its recorded SHA-256."""
        return verify_checksums(self.model_dir(model_id), model_id, on_progress)

    def remove(self, model_id: str) -> list[Path]:
        """Delete the installed model and any unfinished download of it."""
        get_speech_model(model_id)  # refuses unknown ids before deleting anything
        removed = []
        for path in (self.model_dir(model_id), self.partial_dir(model_id)):
            if model_id and path.exists():
                shutil.rmtree(path)
                removed.append(path)
        return removed


def _expected(items: list[DownloadItem]) -> dict[str, str]:
    return {i.label: f"{i.size}:{i.sha256 or i.git_sha1}" for i in items}
