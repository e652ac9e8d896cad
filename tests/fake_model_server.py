"""A real HTTP server on 127.0.0.1 that serves model files the way the hub and Google Cloud Storage
do (Range requests, x-goog-hash, the hub's model-info API), with switches to misbehave: drop the
connection mid-file, ignore Range, answer with an HTML page, refuse with a status code."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Behaviour:
    drop_after: int | None = None  # send this many body bytes, then close the connection
    drops_left: int = 0  # how many responses misbehave (then it serves normally); -1 = always
    ignore_range: bool = False
    status: int | None = None  # answer with this error status instead
    html: bool = False  # Google-Drive-style confirmation page
    goog_md5_of: bytes | None = None  # send x-goog-hash md5 of these bytes (None: of the real body)
    send_goog_md5: bool = False
    delay: float = 0.0  # seconds to sleep after every 64 KiB (lets a test cancel mid-file)


@dataclass
class FakeServer:
    files: dict[str, bytes] = field(default_factory=dict)  # URL path -> content
    behaviour: dict[str, Behaviour] = field(default_factory=dict)
    repos: dict[str, dict] = field(default_factory=dict)  # repo id -> model-info JSON
    log: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range header)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_hub_repo(self, repo_id: str, files: dict[str, bytes], lfs: tuple[str, ...] = (".bin", ".safetensors", ".pth", ".model")) -> str:
        """Serve ``files`` as a hub repository at a fixed commit; returns the commit sha."""
        sha = hashlib.sha1(repo_id.encode()).hexdigest()
        siblings = []
        for name, data in files.items():
            entry: dict = {"rfilename": name, "size": len(data)}
            if name.endswith(lfs):
                entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                entry["blobId"] = hashlib.sha1(b"pointer" + data).hexdigest()
            else:
                entry["blobId"] = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            siblings.append(entry)
            self.files[f"/{repo_id}/resolve/{sha}/{name}"] = data
        self.repos[repo_id] = {"id": repo_id, "modelId": repo_id, "sha": sha, "siblings": siblings, "private": False}
        return sha


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, head: bool) -> None:
            path = self.path.split("?")[0]
            server.log.append((self.command, path, self.headers.get("Range")))
            if path.startswith("/api/models/"):
                repo = path[len("/api/models/"):].split("/revision/")[0]
                return self._json(server.repos[repo]) if repo in server.repos else self._status(404)
            if path not in server.files:
                return self._status(404)
            data = server.files[path]
            b = server.behaviour.get(path, Behaviour())
            misbehave = b.drops_left != 0
            if b.status and misbehave:
                return self._status(b.status)
            if b.html:
                return self._body(200, b"<html><body>Google Drive can't scan this file</body></html>", {"Content-Type": "text/html; charset=utf-8"}, head)
            start = 0
            rng = self.headers.get("Range")
            headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
            if b.send_goog_md5 or b.goog_md5_of is not None:
                md5 = hashlib.md5(b.goog_md5_of if b.goog_md5_of is not None else data).digest()
                headers["x-goog-hash"] = f"crc32c=AAAAAA==, md5={base64.b64encode(md5).decode()}"
            code = 200
            if rng and not b.ignore_range:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(data):
                    return self._status(416)
                code = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            if b.drop_after is not None and misbehave:
                if b.drops_left > 0:
                    b.drops_left -= 1
                self._body(code, body[: b.drop_after], headers, head, length=len(body))
                self.close_connection = True
                return
            self._body(code, body, headers, head, delay=b.delay)

        def _body(self, code: int, body: bytes, headers: dict, head: bool, length: int | None = None, delay: float = 0.0) -> None:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.send_header("Connection", "close")  # no keep-alive: no handler thread outlives a test
            self.close_connection = True
            self.end_headers()
            if head:
                return
            try:
                for i in range(0, len(body), 65536):
                    self.wfile.write(body[i : i + 65536])
                    if delay:
                        import time

                        time.sleep(delay)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _json(self, obj: dict) -> None:
            self._body(200, json.dumps(obj).encode(), {"Content-Type": "application/json"}, False)

        def _status(self, code: int) -> None:
            self._body(code, b"", {}, False)

    return Handler


class running_server:
    """``with running_server(FakeServer(...)) as srv:`` serves on 127.0.0.1 in a thread."""

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        self.httpd.daemon_threads = True
        fake.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fake-model-server", daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
