"""Where models live, and how they get there: an explicit download or an import of official files,
then one conversion into the engine's self-contained model directory. Torch-free: conversion runs in
a spawned process. After setup nothing here touches the network.

Layout under the store root (``LUMEN_MODELS_DIR``, else ``platformdirs.user_data_dir("Lumen")/models``)::

    <root>/<model_id>/                   the engine's model directory (lumen_model.json, visual.safetensors,
                                         llm/, tokenizer.model) + lumen_checksums.json written here
    <root>/.downloads/files/<name>       official URL files (EVA, BLIP-2, projections), shared by models
    <root>/.downloads/<owner>__<repo>/   a hub language-model directory
    <root>/.downloads/known_hashes.json  SHA-256 of every completed download (trust on first use)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.store.catalogue import CATALOGUE, HubRepo, ModelSpec, UrlFile, converted_size_bytes, get_model
from engine.store.core import (CHECKSUMS, ProgressFn, SetupProgress, VerifyReport, hash_files, hub_items,
                               remaining_bytes, verify_checksums, write_checksums, write_json)
from engine.store.locations import models_root
from engine.store.downloads import (
    DownloadError,
    DownloadItem,
    FailureKind,
    check_free_space,
    download,
    remote_size,
)
from engine.store.model_folder import LLM_DIR, MODEL_JSON
from engine.store.official_files import EVA_NAME, QFORMER_NAME, OfficialFiles, find_official_files

log = logging.getLogger(__name__)
MARGIN_BYTES = 1_000_000_000  # never fill a disk to the last gigabyte


@dataclass(frozen=True)
class DownloadOutcome:
    official: OfficialFiles
    missing_by_hand: tuple[UrlFile, ...]  # files the server refused to script (fetch with a browser, then add_file)


class ModelStore:
    def __init__(self, root: Path | None = None, disk_usage: Callable[[str], object] = shutil.disk_usage) -> None:
        self.root = Path(root) if root else models_root()
        self.disk_usage = disk_usage

    # ------------------------------------------------------------ paths and state
    def model_dir(self, model_id: str) -> Path:
        return self.root / model_id

    @property
    def downloads(self) -> Path:
        return self.root / ".downloads"

    def hub_dir(self, repo: HubRepo) -> Path:
        return self.downloads / repo.repo_id.replace("/", "__")

    def is_installed(self, model_id: str) -> bool:
        return (self.model_dir(model_id) / MODEL_JSON).is_file()

    def installed(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MODEL_JSON).is_file())

    def _known_hashes(self) -> dict[str, str]:
        path = self.downloads / "known_hashes.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}

    def _remember_hash(self, url: str, sha256: str) -> None:
        known = self._known_hashes()
        known[url] = sha256
        self.downloads.mkdir(parents=True, exist_ok=True)
        write_json(self.downloads / "known_hashes.json", known)

    # ------------------------------------------------------------ download
    def plan(self, spec: ModelSpec, endpoint: str | None = None, token: str | None = None) -> list[DownloadItem]:
        known = self._known_hashes()
        items = hub_items(spec.llm, self.hub_dir(spec.llm), endpoint, token)
        for f in spec.files:
            items.append(
                DownloadItem(
                    url=f.url,
                    dest=self.downloads / "files" / f.name,
                    label=f.name,
                    size=None if f.approximate else f.size_bytes,
                    sha256=f.sha256 or known.get(f.url),
                    page_url=f.page_url,
                )
            )
        return items

    def download(
        self,
        spec: ModelSpec,
        on_progress: ProgressFn = lambda p: None,
        cancel: threading.Event | None = None,
        endpoint: str | None = None,
        token: str | None = None,
        retries: int = 4,
        backoff: float = 1.0,
    ) -> DownloadOutcome:
        """Fetch every official file for ``spec`` (skipping finished ones). Files whose server refuses
        scripted downloads (Google Drive) are returned in ``missing_by_hand`` instead of failing."""
        cancel = cancel or threading.Event()
        items = self.plan(spec, endpoint, token)
        present = self.official_for(spec)  # e.g. a projection the user added under another name
        todo = [i for i in items if not self._already_done(i) and not _role_found(present, i.label, spec)]
        total = sum(remaining_bytes(i) for i in todo)
        for f in spec.files:  # sizes the servers report now; the catalogue's guess otherwise
            if any(i.label == f.name and i.size is None for i in todo):
                total += remote_size(f.url) or f.size_bytes or 300_000_000
        check_free_space(self.root, total + converted_size_bytes(spec) + MARGIN_BYTES, self.disk_usage)
        done = 0
        by_hand: list[UrlFile] = []
        for index, item in enumerate(todo, 1):

            def tick(n: int, label: str = item.label, index: int = index) -> None:
                nonlocal done
                done += n
                on_progress(SetupProgress("downloading", label, done, max(total, done), index, len(todo)))

            try:
                result = download(item, tick, cancel, retries=retries, backoff=backoff)
            except DownloadError as exc:
                url_file = next((f for f in spec.files if f.name == item.label), None)
                if url_file and url_file.browser_only_likely and exc.kind in _BY_HAND_KINDS:
                    log.warning("%s must be fetched by hand: %s", item.label, exc.detail)
                    by_hand.append(url_file)
                    continue
                raise
            if item.git_sha1 is None:
                self._remember_hash(item.url, result.sha256)
        official = self.official_for(spec)
        on_progress(SetupProgress("downloading", "done", done, done, len(todo), len(todo)))
        return DownloadOutcome(official, tuple(by_hand))

    def _already_done(self, item: DownloadItem) -> bool:
        if not item.dest.is_file():
            return False
        if item.size is not None and item.dest.stat().st_size != item.size:
            return False
        return item.sha256 is None or self._known_hashes().get(item.url) == item.sha256

    def add_file(self, path: Path) -> Path:
        """Copy an official file the user fetched with a browser next to the downloads."""
        dest = self.downloads / "files" / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        check_free_space(dest.parent, path.stat().st_size + MARGIN_BYTES, self.disk_usage)
        shutil.copyfile(path, dest)
        return dest

    def official_for(self, spec: ModelSpec) -> OfficialFiles:
        found = find_official_files(self.downloads / "files", spec.model_id)
        llm = self.hub_dir(spec.llm)
        return OfficialFiles(found.eva, found.qformer, found.projection, llm if llm.is_dir() else None, spec.model_id)

    # ------------------------------------------------------------ conversion
    def install(
        self,
        spec: ModelSpec,
        official: OfficialFiles,
        on_progress: ProgressFn = lambda p: None,
        cancel: threading.Event | None = None,
        converter: Callable[..., object] | None = None,
        preset: str | None = None,
    ) -> Path:
        """Convert official files into ``<root>/<model_id>`` and record its checksums.
        ``preset`` overrides the engine.minigpt4.config preset (tests convert the tiny fixtures)."""
        missing = official.missing(spec)
        if missing:
            raise DownloadError(FailureKind.MISSING, ", ".join(missing))
        out = self.model_dir(spec.model_id)
        tmp = out.with_name(out.name + ".converting")
        shutil.rmtree(tmp, ignore_errors=True)
        check_free_space(self.root, converted_size_bytes(spec) + MARGIN_BYTES, self.disk_usage)
        on_progress(SetupProgress("converting", spec.title, 0, None))
        from engine.store.conversion_process import run_conversion

        try:
            run_conversion(spec, official, tmp, cancel or threading.Event(), converter, preset)
            self._write_checksums(tmp, on_progress)
        except BaseException:
            for leftover in (tmp, tmp.with_name(tmp.name + ".partial")):
                shutil.rmtree(leftover, ignore_errors=True)
            raise
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        on_progress(SetupProgress("done", spec.title, 1, 1))
        return out

    def _write_checksums(self, model_dir: Path, on_progress: ProgressFn) -> None:
        files = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file() and p.name != CHECKSUMS)
        write_checksums(model_dir, hash_files(model_dir, files, model_dir.name, on_progress))

    def prequantize(
        self,
        model_id: str,
        quantization: str,
        device: str = "auto",
        on_progress: ProgressFn = lambda p: None,
        cancel: threading.Event | None = None,
    ) -> Path:
        """Store ``<model_id>-<quantization>``: the LLM saved already quantised (bitsandbytes), so
        loading it with that quantization never quantises at start-up. Needs the fp16 model first."""
        if quantization not in ("nf4", "int8"):
            raise ValueError(f"unknown quantization {quantization!r}")
        src = self.model_dir(model_id)
        if not self.is_installed(model_id):
            raise DownloadError(FailureKind.MISSING, f"{model_id} is not installed", str(src))
        out = self.model_dir(f"{model_id}-{quantization}")
        tmp = out.with_name(out.name + ".converting")
        shutil.rmtree(tmp, ignore_errors=True)
        llm_bytes = sum(p.stat().st_size for p in (src / LLM_DIR).rglob("*") if p.is_file())
        check_free_space(self.root, llm_bytes // (2 if quantization == "int8" else 3) + MARGIN_BYTES, self.disk_usage)
        on_progress(SetupProgress("converting", out.name, 0, None))
        from engine.store.conversion_process import run_in_process
        from engine.minigpt4.prequantize import prequantize

        try:
            kwargs = dict(src_dir=src, out_dir=tmp, quantization=quantization, device=device)
            run_in_process(prequantize, kwargs, cancel or threading.Event(), tmp)
            self._write_checksums(tmp, on_progress)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        return out

    def convert_gguf(self, model_id: str, precision: str, on_progress: ProgressFn = lambda p: None,
                     cancel: threading.Event | None = None) -> Path:
        """Store ``<model>/gguf/llm-<precision>.gguf`` for the llama.cpp back-end (engine.store.gguf_convert),
        in a spawned process like every conversion; the folder's own files are left as they are."""
        from engine.store import gguf_convert

        if precision not in gguf_convert.PRECISIONS:
            raise ValueError(f"unknown GGUF precision {precision!r}")
        src = self.model_dir(model_id)
        if not self.is_installed(model_id):
            raise DownloadError(FailureKind.MISSING, f"{model_id} is not installed", str(src))
        llm_bytes = sum(p.stat().st_size for p in (src / LLM_DIR).rglob("*") if p.is_file())
        check_free_space(self.root, int(llm_bytes * 1.2) + MARGIN_BYTES, self.disk_usage)  # + a transient f16
        on_progress(SetupProgress("converting", f"{model_id} {precision}", 0, None))
        from engine.store.conversion_process import run_in_process

        out = gguf_convert.gguf_path(src, precision)
        run_in_process(gguf_convert.convert, dict(model_dir=src, precision=precision), cancel or threading.Event(),
                       out.parent)
        return out

    # ------------------------------------------------------------ verify / remove
    def verify(self, model_id: str, on_progress: ProgressFn = lambda p: None) -> VerifyReport:
        return verify_checksums(self.model_dir(model_id), model_id, on_progress)

    def discard_llm_download(self, spec: ModelSpec) -> Path | None:
        """Delete the downloaded language-model folder (13-26 GB) once the model is converted: the
        converted directory holds the same weights. The small shared files (EVA, BLIP-2) stay."""
        hub = self.hub_dir(spec.llm)
        if not hub.exists():
            return None
        shutil.rmtree(hub)
        return hub

    def remove(self, model_id: str, downloads_too: bool = False) -> list[Path]:
        removed = []
        for path in (self.model_dir(model_id), self.model_dir(model_id).with_name(model_id + ".converting")):
            if path.exists():
                shutil.rmtree(path)
                removed.append(path)
        if downloads_too and model_id in {s.model_id for s in CATALOGUE}:
            spec = get_model(model_id)
            hub = self.discard_llm_download(spec)
            if hub is not None:
                removed.append(hub)
            shared = {f.name for s in CATALOGUE if s.model_id != model_id and self.is_installed(s.model_id) for f in s.files}
            for f in spec.files:
                for p in (self.downloads / "files" / f.name, self.downloads / "files" / (f.name + ".part")):
                    if p.exists() and f.name not in shared:
                        p.unlink()
                        removed.append(p)
        return removed


_BY_HAND_KINDS = {FailureKind.BROWSER_ONLY, FailureKind.AUTH, FailureKind.HTTP, FailureKind.NETWORK}


def _role_found(official: OfficialFiles, name: str, spec: ModelSpec) -> bool:
    """True when the official file ``name`` (an URL file of ``spec``) is already there under any name."""
    if name not in {f.name for f in spec.files}:
        return False  # hub files are checked one by one
    found = {EVA_NAME: official.eva, QFORMER_NAME: official.qformer}.get(name, official.projection)
    return found is not None
