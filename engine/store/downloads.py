"""Resumable, verified, cancellable HTTPS downloads with progress (urllib; torch-free).

A file is written to ``<dest>.part`` and renamed only after its size and checksums match. An
interrupted connection is retried from where it stopped (HTTP ``Range``); a cancelled or failed
download leaves the ``.part`` file so the next attempt resumes. Checksums verified: the expected
SHA-256 (hub LFS files, or one recorded on an earlier download), the git blob id (small hub files),
and the MD5 Google Cloud Storage sends in ``x-goog-hash``.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import http.client
import logging
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

log = logging.getLogger(__name__)
CHUNK = 1 << 20
_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class FailureKind(StrEnum):
    CANCELLED = "cancelled"
    NETWORK = "network"  # connection kept failing after the retries
    HTTP = "http"  # the server refused (404, 500 ...)
    AUTH = "auth"  # 401/403: a gated repository or missing token
    CHECKSUM = "checksum"  # the bytes differ from what was promised; the file was deleted
    DISK_FULL = "disk_full"
    BROWSER_ONLY = "browser_only"  # got a web page instead of the file (Google Drive)
    MISSING = "missing"  # import: official files not found
    CONVERSION = "conversion"
    OFFLINE = "offline"  # HF_HUB_OFFLINE is set


class DownloadError(Exception):
    def __init__(self, kind: FailureKind, detail: str, path: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.path = path


@dataclass(frozen=True)
class DownloadItem:
    url: str
    dest: Path
    label: str  # the file's name as the user sees it
    size: int | None = None
    sha256: str | None = None
    git_sha1: str | None = None  # git blob id (hub files outside LFS)
    headers: tuple[tuple[str, str], ...] = ()
    page_url: str = ""  # for BROWSER_ONLY: where a person can fetch it


@dataclass(frozen=True)
class FileDone:
    path: Path
    size: int
    sha256: str


def check_free_space(directory: Path, needed: int, disk_usage: Callable[[str], object] = shutil.disk_usage) -> int:
    """Raise DISK_FULL unless ``needed`` bytes fit under ``directory``; return the free bytes."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = int(disk_usage(str(probe)).free)  # type: ignore[attr-defined]
    if free < needed:
        raise DownloadError(FailureKind.DISK_FULL, f"need {needed} bytes, {free} free", str(directory))
    return free


class _SameHostAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never send our Authorization header to another host (the hub's CDN
    URLs are pre-signed and refuse a second credential; a token must not leak to them)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameHostAuth())


class _Hashes:
    def __init__(self, git_size: int | None) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.git = hashlib.sha1(usedforsecurity=False)
        if git_size is not None:
            self.git.update(b"blob %d\0" % git_size)

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        self.md5.update(data)
        self.git.update(data)


def _goog_md5(headers: http.client.HTTPMessage) -> str | None:
    for value in headers.get_all("x-goog-hash") or []:
        for part in value.split(","):
            key, _, b64 = part.strip().partition("=")
            if key == "md5":
                return base64.b64decode(b64 + "==").hex()
    return None


def download(
    item: DownloadItem,
    on_bytes: Callable[[int], None] = lambda n: None,
    cancel: threading.Event | None = None,
    retries: int = 4,
    timeout: float = 30.0,
    backoff: float = 1.0,
) -> FileDone:
    """Fetch ``item`` into ``item.dest``. ``on_bytes(n)`` is called with every chunk's size (also
    for the bytes already on disk when resuming, once, at the start)."""
    cancel = cancel or threading.Event()
    part = item.dest.with_name(item.dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    hashes = _Hashes(item.size if item.git_sha1 else None)
    have = _rehash(part, hashes) if part.exists() else 0
    if have:
        log.info("resuming %s at %d bytes", item.label, have)
        on_bytes(have)
    md5: str | None = None
    failures = 0
    while item.size is None or have < item.size or have == 0:
        if cancel.is_set():
            raise DownloadError(FailureKind.CANCELLED, "cancelled", str(part))
        try:
            got, md5_now, complete = _fetch(item, part, have, hashes, on_bytes, cancel, timeout)
        except _Restart:
            hashes, have = _Hashes(item.size if item.git_sha1 else None), 0
            continue
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                _raise_http(exc, item)
            failures += 1
            have = part.stat().st_size if part.exists() else 0
            if failures > retries:
                raise DownloadError(FailureKind.NETWORK, f"{item.url}: {exc}", str(part)) from exc
            log.warning("download of %s interrupted (%s); retry %d at byte %d", item.label, exc, failures, have)
            time.sleep(backoff * failures)
            continue
        have += got
        md5 = md5_now or md5
        if complete:
            break
    return _finish(item, part, have, hashes, md5)


class _Restart(Exception):
    """The server ignored our Range request: start the file again."""


def _fetch(item, part, have, hashes, on_bytes, cancel, timeout):  # type: ignore[no-untyped-def]
    headers = dict(item.headers)
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(item.url, headers=headers)
    try:
        response = _OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and (item.size is None or have >= item.size):
            return 0, None, True  # already complete
        raise
    with response:
        if have and response.status != 206:
            log.warning("%s: server ignored the Range request; starting again", item.label)
            part.unlink()
            raise _Restart()
        if "text/html" in (response.headers.get("Content-Type") or "") and not item.label.endswith((".html", ".json")):
            raise DownloadError(FailureKind.BROWSER_ONLY, f"{item.url} answered with a web page", item.page_url)
        md5 = _goog_md5(response.headers)
        got = 0
        with open(part, "ab") as out:
            while True:
                if cancel.is_set():
                    raise DownloadError(FailureKind.CANCELLED, "cancelled", str(part))
                data = response.read(CHUNK)
                if not data:
                    break
                try:
                    out.write(data)
                    out.flush()
                except OSError as exc:
                    if exc.errno in _DISK_ERRNOS:
                        raise DownloadError(FailureKind.DISK_FULL, str(exc), str(part)) from exc
                    raise
                hashes.update(data)
                got += len(data)
                on_bytes(len(data))
        length = response.headers.get("Content-Length")
        if length is not None and got < int(length):
            raise http.client.IncompleteRead(b"", int(length) - got)
        return got, md5, True


def _raise_http(exc: urllib.error.HTTPError, item: DownloadItem) -> None:
    if exc.code in (401, 403):
        raise DownloadError(FailureKind.AUTH, f"{item.url}: HTTP {exc.code}", item.page_url) from exc
    if exc.code < 500 and exc.code != 429:
        raise DownloadError(FailureKind.HTTP, f"{item.url}: HTTP {exc.code}", item.page_url) from exc


def _rehash(part: Path, hashes: _Hashes) -> int:
    n = 0
    with open(part, "rb") as f:
        while data := f.read(CHUNK):
            hashes.update(data)
            n += len(data)
    return n


def _finish(item: DownloadItem, part: Path, have: int, hashes: _Hashes, md5: str | None) -> FileDone:
    problems = []
    if item.size is not None and have != item.size:
        problems.append(f"size {have} != {item.size}")
    sha256 = hashes.sha256.hexdigest()
    if item.sha256 and sha256 != item.sha256.lower():
        problems.append(f"sha256 {sha256} != {item.sha256}")
    if item.git_sha1 and hashes.git.hexdigest() != item.git_sha1.lower():
        problems.append(f"git blob {hashes.git.hexdigest()} != {item.git_sha1}")
    if md5 and hashes.md5.hexdigest() != md5:
        problems.append(f"md5 {hashes.md5.hexdigest()} != {md5} (x-goog-hash)")
    if problems:
        part.unlink(missing_ok=True)  # a corrupt file must never be resumed
        raise DownloadError(FailureKind.CHECKSUM, f"{item.label}: " + "; ".join(problems), str(item.dest))
    os.replace(part, item.dest)
    return FileDone(item.dest, have, sha256)


def remote_size(url: str, headers: tuple[tuple[str, str], ...] = (), timeout: float = 15.0) -> int | None:
    """Content-Length from a HEAD request (for progress totals only; None when unknown or a web page)."""
    request = urllib.request.Request(url, headers=dict(headers), method="HEAD")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            if "text/html" in (response.headers.get("Content-Type") or ""):
                return None
            length = response.headers.get("Content-Length")
            return int(length) if length is not None else None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        log.info("no size for %s: %s", url, exc)
        return None


def sha256_file(path: Path, on_bytes: Callable[[int], None] = lambda n: None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(CHUNK):
            digest.update(data)
            on_bytes(len(data))
    return digest.hexdigest()
