"""Build the Linux PyInstaller bundle and smoke-test it (installers/linux/build.sh + smoke_test.sh).

Slow (about 7 minutes and ~2.2 GB of disk), so it runs only when asked, as CI does (.ci/run):
    LUMEN_TEST_BUNDLE=1 .venv/bin/python -m pytest tests/installers/test_linux_bundle.py
``LUMEN_BUNDLE_DIR=<dist/lumen>`` smoke-tests an existing bundle instead of building one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.environ.get("LUMEN_TEST_BUNDLE") != "1", reason="set LUMEN_TEST_BUNDLE=1 to build and smoke-test the bundle"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle"),
    pytest.mark.timeout(3600),
]


def test_bundle_builds_and_its_engine_answers(tmp_path: Path) -> None:
    bundle = os.environ.get("LUMEN_BUNDLE_DIR")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    if not bundle:
        dist = tmp_path / "build"
        built = subprocess.run(["bash", "installers/linux/build.sh"], cwd=ROOT, env={**env, "LUMEN_DIST": str(dist)},
                               capture_output=True, text=True, timeout=3000)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        bundle = str(dist / "dist" / "lumen")
        assert list(dist.glob("lumen-*-linux-*.tar.gz")), "no tarball"
    smoke = subprocess.run(["bash", "installers/linux/smoke_test.sh", bundle], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=900)
    assert smoke.returncode == 0 and "SMOKE OK" in smoke.stdout, smoke.stdout[-3000:] + smoke.stderr[-3000:]
