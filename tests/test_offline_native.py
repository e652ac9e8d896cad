"""No network at run time, checked at the OS level, native code included.

The autouse guard in tests/conftest.py patches Python's sockets only; ONNX Runtime's telemetry (and
any other native library) would pass it. Here a real engine session (tests/offline_session.py:
model load, generation, OCR, speech recognition) runs in a fresh interpreter under
``strace -f -e trace=network``, and any use of a non-loopback address (a DNS query included) fails
the test, as does any file it writes in the (temporary) home folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_ADDRESS = re.compile(r"sa_family=(AF_INET6?)[^}]*?(?:inet_addr\(\"([^\"]+)\"\)|inet_pton\(AF_INET6, \"([^\"]+)\")")
_SENDS = ("connect(", "sendto(", "sendmsg(", "sendmmsg(", "bind(")


def outside_traffic(trace: str) -> list[str]:
    """strace lines that send to, connect to or bind a non-loopback IP address, or open a raw socket."""
    bad = []
    for line in trace.splitlines():
        if "AF_PACKET" in line or "SOCK_RAW" in line:
            bad.append(line)
            continue
        if not any(call in line for call in _SENDS):
            continue
        for _family, v4, v6 in _ADDRESS.findall(line):
            address = v4 or v6
            if not (address.startswith("127.") or address in ("::1", "0.0.0.0", "::")):
                bad.append(line)
    return bad


def test_the_filter_sees_dns_and_outside_connections() -> None:
    dns = ('123 sendto(5, "\\x12", 40, MSG_NOSIGNAL, {sa_family=AF_INET, sin_port=htons(53), '
           'sin_addr=inet_addr("10.0.0.2")}, 16) = 40')
    v6 = ('9 connect(3, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
          'inet_pton(AF_INET6, "2603:1030::1", &sin6_addr), sin6_scope_id=0}, 28) = -1')
    local = '9 connect(7, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0'
    unix = '9 connect(7, {sa_family=AF_UNIX, sun_path="/tmp/.X11-unix/X0"}, 110) = 0'
    assert outside_traffic("\n".join([dns, v6, local, unix])) == [dns, v6]


@pytest.mark.system
def test_a_real_engine_session_uses_no_network_and_writes_nothing_home(tmp_path, tiny_model_dir) -> None:  # noqa: ANN001
    if shutil.which("strace") is None:
        pytest.skip("needs strace (scripts/setup.sh --dev installs it)")
    from tests.speech_samples import spoken_wav

    wav = tmp_path / "question.wav"
    wav.write_bytes(spoken_wav("what is on my screen"))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "ORT_")) and k not in ("HF_HOME", "TORCH_HOME")}  # the engine must set it
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    trace = tmp_path / "trace.txt"
    run = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=network", "-o", str(trace),
         sys.executable, "-m", "tests.offline_session", str(tiny_model_dir), str(wav)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert run.stdout.split() == ["OK", "LoadModel", "OK", "Describe", "OK", "ReadText", "OK", "Transcribe"]
    assert trace.read_text().count("socket(") > 0  # strace did watch (the engine pipe, at least)
    assert outside_traffic(trace.read_text()) == []
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert written == [], f"files written in the home folder: {written}"
