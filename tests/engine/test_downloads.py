"""engine.store.downloads against a real HTTP server on 127.0.0.1 (tests/fake_model_server.py)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from engine.store.downloads import CHUNK, DownloadError, DownloadItem, FailureKind, check_free_space, download
from tests.fake_model_server import Behaviour, FakeServer, running_server

ROOT = Path(__file__).resolve().parents[2]
DATA = bytes(range(256)) * (3 * CHUNK // 256 + 1234)  # a bit over 3 MiB: several chunks


def _item(srv: FakeServer, tmp_path: Path, path: str = "/eva_vit_g.pth", **kw: object) -> DownloadItem:
    return DownloadItem(url=srv.url(path), dest=tmp_path / "out" / path.strip("/"), label=path.strip("/"), **kw)  # type: ignore[arg-type]


def _ranges(srv: FakeServer) -> list[str | None]:
    return [r for m, _, r in srv.log if m == "GET"]


def test_progress_events_add_up_and_file_is_verified(tmp_path: Path) -> None:
    sha = hashlib.sha256(DATA).hexdigest()
    with running_server(FakeServer(files={"/eva_vit_g.pth": DATA})) as srv:
        seen: list[int] = []
        done = download(_item(srv, tmp_path, size=len(DATA), sha256=sha), seen.append)
    assert done.path.read_bytes() == DATA and done.sha256 == sha
    assert sum(seen) == len(DATA) and len(seen) >= 4
    assert not done.path.with_name("eva_vit_g.pth.part").exists()


def test_interrupted_connection_resumes_with_range(tmp_path: Path) -> None:
    half = len(DATA) // 2
    fake = FakeServer(files={"/eva_vit_g.pth": DATA}, behaviour={"/eva_vit_g.pth": Behaviour(drop_after=half, drops_left=1)})
    with running_server(fake) as srv:
        seen: list[int] = []
        done = download(_item(srv, tmp_path, size=len(DATA), sha256=hashlib.sha256(DATA).hexdigest()), seen.append, backoff=0)
        ranges = _ranges(srv)
    assert done.path.read_bytes() == DATA
    assert ranges == [None, f"bytes={half}-"]  # the second request continued where the first broke
    assert sum(seen) == len(DATA)  # no byte counted twice


def test_connection_that_keeps_failing_reports_network_and_keeps_partial(tmp_path: Path) -> None:
    fake = FakeServer(files={"/f.bin": DATA}, behaviour={"/f.bin": Behaviour(drop_after=1000, drops_left=-1)})
    with running_server(fake) as srv:
        item = _item(srv, tmp_path, "/f.bin", size=len(DATA))
        with pytest.raises(DownloadError) as err:
            download(item, retries=2, backoff=0)
        assert err.value.kind is FailureKind.NETWORK
        part = item.dest.with_name("f.bin.part")
        assert part.stat().st_size == 3000  # 3 attempts x 1000 bytes, all kept
        fake.behaviour.clear()  # the network is back: the next run resumes
        download(item, backoff=0)
        assert _ranges(srv)[-1] == "bytes=3000-"
    assert item.dest.read_bytes() == DATA


def test_cancel_keeps_partial_file_and_next_run_resumes(tmp_path: Path) -> None:
    cancel = threading.Event()
    fake = FakeServer(files={"/f.bin": DATA})
    with running_server(fake) as srv:
        item = _item(srv, tmp_path, "/f.bin", size=len(DATA), sha256=hashlib.sha256(DATA).hexdigest())

        def on_bytes(n: int) -> None:
            cancel.set()  # the user pressed Cancel while the first chunk arrived

        with pytest.raises(DownloadError) as err:
            download(item, on_bytes, cancel)
        assert err.value.kind is FailureKind.CANCELLED
        part = item.dest.with_name("f.bin.part")
        kept = part.stat().st_size
        assert 0 < kept < len(DATA) and not item.dest.exists()
        resumed: list[int] = []
        download(item, resumed.append)
        assert _ranges(srv)[-1] == f"bytes={kept}-"
    assert item.dest.read_bytes() == DATA
    assert resumed[0] == kept  # the resumed bytes are reported once, up front


def test_corrupted_file_is_caught_by_its_checksum_and_deleted(tmp_path: Path) -> None:
    corrupt = bytearray(DATA)
    corrupt[12345] ^= 0xFF
    with running_server(FakeServer(files={"/f.bin": bytes(corrupt)})) as srv:
        item = _item(srv, tmp_path, "/f.bin", size=len(DATA), sha256=hashlib.sha256(DATA).hexdigest())
        with pytest.raises(DownloadError) as err:
            download(item)
    assert err.value.kind is FailureKind.CHECKSUM
    assert not item.dest.exists() and not item.dest.with_name("f.bin.part").exists()


def test_gcs_md5_header_is_checked(tmp_path: Path) -> None:
    fake = FakeServer(files={"/ok.pth": DATA, "/bad.pth": DATA})
    fake.behaviour = {"/ok.pth": Behaviour(send_goog_md5=True), "/bad.pth": Behaviour(goog_md5_of=b"something else")}
    with running_server(fake) as srv:
        assert download(_item(srv, tmp_path, "/ok.pth")).size == len(DATA)
        with pytest.raises(DownloadError) as err:
            download(_item(srv, tmp_path, "/bad.pth"))
    assert err.value.kind is FailureKind.CHECKSUM and "x-goog-hash" in err.value.detail


def test_git_blob_id_is_checked(tmp_path: Path) -> None:
    body = b'{"model_type": "llama"}'
    good = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
    with running_server(FakeServer(files={"/config.json": body})) as srv:
        download(_item(srv, tmp_path, "/config.json", size=len(body), git_sha1=good))
        with pytest.raises(DownloadError) as err:
            download(_item(srv, tmp_path / "2", "/config.json", size=len(body), git_sha1="0" * 40))
    assert err.value.kind is FailureKind.CHECKSUM


def test_server_ignoring_range_restarts_cleanly(tmp_path: Path) -> None:
    fake = FakeServer(files={"/f.bin": DATA})
    with running_server(fake) as srv:
        item = _item(srv, tmp_path, "/f.bin", size=len(DATA), sha256=hashlib.sha256(DATA).hexdigest())
        part = item.dest.with_name("f.bin.part")
        part.parent.mkdir(parents=True)
        part.write_bytes(DATA[:5000])
        fake.behaviour["/f.bin"] = Behaviour(ignore_range=True)
        download(item)
    assert item.dest.read_bytes() == DATA


@pytest.mark.parametrize(("status", "kind"), [(404, FailureKind.HTTP), (403, FailureKind.AUTH), (401, FailureKind.AUTH)])
def test_refusals_are_typed(tmp_path: Path, status: int, kind: FailureKind) -> None:
    fake = FakeServer(files={"/f.bin": DATA}, behaviour={"/f.bin": Behaviour(status=status, drops_left=-1)})
    with running_server(fake) as srv, pytest.raises(DownloadError) as err:
        download(_item(srv, tmp_path, "/f.bin"), backoff=0)
    assert err.value.kind is kind


def test_web_page_instead_of_file_is_browser_only(tmp_path: Path) -> None:
    fake = FakeServer(files={"/uc": DATA}, behaviour={"/uc": Behaviour(html=True)})
    with running_server(fake) as srv, pytest.raises(DownloadError) as err:
        download(DownloadItem(srv.url("/uc"), tmp_path / "p.pth", "p.pth", page_url="https://drive.example/view"))
    assert err.value.kind is FailureKind.BROWSER_ONLY and err.value.path == "https://drive.example/view"
    assert not (tmp_path / "p.pth").exists()


def test_free_space_check(tmp_path: Path) -> None:
    class Usage:
        free = 10_000

    with pytest.raises(DownloadError) as err:
        check_free_space(tmp_path / "not" / "yet", 20_000, lambda p: Usage())
    assert err.value.kind is FailureKind.DISK_FULL
    assert check_free_space(tmp_path, 5_000, lambda p: Usage()) == 10_000


def test_disk_filling_up_mid_file_is_disk_full(tmp_path: Path) -> None:
    """A real write failure: the child process may write at most 1.5 MiB per file (RLIMIT_FSIZE),
    so the kernel refuses the write in the middle of the download (EFBIG, as a full disk would)."""
    pytest.importorskip("resource")
    with running_server(FakeServer(files={"/f.bin": DATA})) as srv:
        script = textwrap.dedent(
            f"""
            import resource, signal, sys
            from pathlib import Path
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, ({int(1.5 * CHUNK)}, {int(1.5 * CHUNK)}))
            from engine.store.downloads import DownloadError, DownloadItem, download
            try:
                download(DownloadItem({srv.url("/f.bin")!r}, Path({str(tmp_path / "f.bin")!r}), "f.bin", size={len(DATA)}))
            except DownloadError as exc:
                print("KIND", exc.kind)
            """
        )
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "KIND disk_full" in done.stdout, done.stderr
    assert (tmp_path / "f.bin.part").exists() and not (tmp_path / "f.bin").exists()
