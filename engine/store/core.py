"""What the model store and the speech-model store share: the store root, setup progress, the
checksum list written beside an installed model (``lumen_checksums.json``) and its verification,
atomic JSON writes, the hub's file listing and the bytes left to fetch. Torch-free.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.store.catalogue import HubRepo
from engine.store.downloads import DownloadError, DownloadItem, FailureKind, sha256_file

log = logging.getLogger(__name__)
CHECKSUMS = "lumen_checksums.json"


@dataclass(frozen=True)
class SetupProgress:
    stage: str  # "downloading", "verifying", "converting", "done"
    label: str  # file name or step
    done: int  # bytes (or steps) done over the whole stage
    total: int | None
    file_index: int = 0
    file_count: int = 0

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)


ProgressFn = Callable[[SetupProgress], None]


@dataclass(frozen=True)
class VerifyReport:
    model_id: str
    ok: bool
    checked: int
    problems: tuple[str, ...]


def write_json(path: Path, data: object) -> None:
    """Write ``data`` so that a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def remaining_bytes(item: DownloadItem) -> int:
    """Bytes still to fetch for ``item``, counting what its ``.part`` file already holds."""
    part = item.dest.with_name(item.dest.name + ".part")
    return max(0, (item.size or 0) - (part.stat().st_size if part.exists() else 0))


def hash_files(folder: Path, names: Iterable[str], stage_label: str, on_progress: ProgressFn) -> dict[str, str]:
    """SHA-256 of each file under ``folder``, reporting "verifying" progress over all of them."""
    names = list(names)
    total = sum((folder / n).stat().st_size for n in names)
    done = 0
    hashes = {}
    for name in names:

        def tick(n: int, label: str = stage_label or name) -> None:
            nonlocal done
            done += n
            on_progress(SetupProgress("verifying", label, done, total))

        hashes[name] = sha256_file(folder / name, tick)
    return hashes


def write_checksums(folder: Path, hashes: dict[str, str]) -> None:
    """The checksum list of an installed model: SHA-256 and size of each file, by relative path."""
    write_json(folder / CHECKSUMS, {n: {"sha256": h, "size": (folder / n).stat().st_size} for n, h in hashes.items()})


def verify_checksums(folder: Path, model_id: str, on_progress: ProgressFn = lambda p: None) -> VerifyReport:
    """Re-read every file listed in ``folder``'s checksum list against its recorded size and SHA-256."""
    try:
        sums = json.loads((folder / CHECKSUMS).read_text())
    except (OSError, ValueError) as exc:
        return VerifyReport(model_id, False, 0, (f"no checksum list: {exc}",))
    problems = []
    total = sum(int(v["size"]) for v in sums.values())
    done = 0
    for rel, expected in sorted(sums.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
            done += int(expected["size"])
            continue
        if path.stat().st_size != int(expected["size"]):
            problems.append(f"wrong size: {rel}")
            done += int(expected["size"])
            continue

        def tick(n: int, rel: str = rel) -> None:
            nonlocal done
            done += n
            on_progress(SetupProgress("verifying", rel, done, total))

        if sha256_file(path, tick) != expected["sha256"]:
            problems.append(f"checksum differs: {rel}")
    return VerifyReport(model_id, not problems, len(sums), tuple(problems))


def hub_items(repo: HubRepo, dest: Path, endpoint: str | None, token: str | None) -> list[DownloadItem]:
    """Ask the hub for the exact file list, sizes and checksums at a pinned commit."""
    from huggingface_hub import HfApi, constants, get_token, hf_hub_url
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        raise DownloadError(FailureKind.OFFLINE, "HF_HUB_OFFLINE is set; unset it to download")
    token = token or get_token()
    try:
        info = HfApi(endpoint=endpoint, token=token or False).model_info(
            repo.repo_id, revision=repo.revision, files_metadata=True
        )
    except (GatedRepoError, RepositoryNotFoundError) as exc:
        raise DownloadError(FailureKind.AUTH, f"{repo.repo_id}: {exc}", f"https://huggingface.co/{repo.repo_id}") from exc
    except HfHubHTTPError as exc:
        raise DownloadError(FailureKind.HTTP, f"{repo.repo_id}: {exc}") from exc
    except Exception as exc:  # the hub client's transport errors (httpx: ConnectError, timeouts, ...)
        log.warning("hub listing of %s failed", repo.repo_id, exc_info=True)
        raise DownloadError(FailureKind.NETWORK, f"{repo.repo_id}: {type(exc).__name__}: {exc}") from exc
    siblings = [s for s in info.siblings or () if "/" not in s.rfilename and s.rfilename.endswith(repo.allow_suffixes)]
    names = {s.rfilename for s in siblings}
    has_st = any(n.endswith(".safetensors") for n in names)
    headers = (("Authorization", f"Bearer {token}"),) if token else ()
    items = []
    for s in siblings:
        name = s.rfilename
        if repo.prefer_safetensors and has_st and (name.endswith(".bin") or name == "pytorch_model.bin.index.json"):
            continue
        if name.startswith("training_args") or name.startswith("optimizer"):
            continue
        lfs = s.lfs
        items.append(
            DownloadItem(
                url=hf_hub_url(repo.repo_id, name, revision=info.sha, endpoint=endpoint),
                dest=dest / name,
                label=name,
                size=s.size,
                sha256=lfs.sha256 if lfs else None,
                git_sha1=None if lfs else s.blob_id,
                headers=headers,
                page_url=f"https://huggingface.co/{repo.repo_id}",
            )
        )
    return items
