"""What the Windows and macOS build scripts and the spec carry (they cannot be run here), and the
bundle self-test every build script runs, exercised in this environment."""

from __future__ import annotations

import plistlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLERS = ROOT / "installers"


@pytest.mark.system
def test_bundle_self_test_imports_every_part_and_names_a_missing_one(tmp_path: Path) -> None:
    entry = str(INSTALLERS / "lumen_entry.py")
    env = {"PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, entry, "--bundle-self-test"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "parts import" in done.stdout
    blocker = tmp_path / "sounddevice.py"  # a bundle without PortAudio's binding
    blocker.write_text("raise ImportError('PortAudio library not found')\n")
    done = subprocess.run([sys.executable, entry, "--bundle-self-test"], capture_output=True, text=True,
                          timeout=120, env={**env, "PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert done.returncode == 1 and "MISSING sounddevice (push-to-talk (PortAudio))" in done.stdout


def test_the_windows_bundle_keeps_accelerate_and_every_build_installs_voice_and_self_tests() -> None:
    spec = (INSTALLERS / "lumen.spec").read_text()
    always_excluded = re.search(r"excludes = \[(.*?)\]", spec, re.S).group(1)
    assert "accelerate" not in always_excluded and "bitsandbytes" not in always_excluded
    windows, macos = (INSTALLERS / "windows" / "build.ps1").read_text(), (INSTALLERS / "macos" / "build.sh").read_text()
    assert '".[gpu,voice,bundle]"' in windows and "--bundle-self-test" in windows
    assert '".[voice,bundle]"' in macos and "--bundle-self-test" in macos
    assert "--bundle-self-test" in (INSTALLERS / "linux" / "build.sh").read_text()


def test_macos_signing_has_the_microphone_entitlement_a_timestamp_and_notarisation() -> None:
    macos = (INSTALLERS / "macos" / "build.sh").read_text()
    entitlements = plistlib.loads((INSTALLERS / "macos" / "entitlements.plist").read_bytes())
    assert entitlements == {"com.apple.security.device.audio-input": True}
    sign = next(line for line in macos.splitlines() if "codesign --deep" in line)
    assert "--options runtime" in sign and "--timestamp" in sign and "--entitlements" in sign
    assert "xcrun notarytool submit" in macos and "xcrun stapler staple" in macos


def test_a_failed_self_test_stops_every_build() -> None:
    for script in ("linux/build.sh", "macos/build.sh"):
        text = (INSTALLERS / script).read_text()
        strict = text.index("set -euo pipefail")
        test_line = next(line for line in text.splitlines() if "--bundle-self-test" in line and not line.startswith("#"))
        assert strict < text.index(test_line) and "|| true" not in test_line and "; true" not in test_line, script
    lines = (INSTALLERS / "windows" / "build.ps1").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "--bundle-self-test" in line and not line.startswith("#"))
    assert "$LASTEXITCODE -ne 0" in lines[at + 1] and "throw" in lines[at + 1]


def test_the_self_test_imports_every_platform_only_dependency() -> None:
    """A package the app needs on one system only (pyproject's sys_platform markers) is in that
    system's self-test, so a bundle without it fails its build (e.g. ScreenCaptureKit on macOS)."""
    import tomllib

    sys.path.insert(0, str(INSTALLERS))
    try:
        import lumen_entry
    finally:
        sys.path.remove(str(INSTALLERS))
    modules = {"python-xlib": "Xlib", "pyobjc-framework-Cocoa": "AppKit"}
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        if "sys_platform" not in dep:
            continue
        name = re.match(r"[A-Za-z0-9_.-]+", dep).group(0)
        platform = re.search(r"sys_platform == '(\w+)'", dep).group(1)
        module = modules.get(name, name.removeprefix("pyobjc-framework-"))
        assert module in lumen_entry.PLATFORM.get(platform, {}), f"{name} ({platform}) is not self-tested"


def test_the_windows_build_ships_nvdas_pinned_controller_client_where_lumen_looks_for_it(tmp_path: Path,
                                                                                       monkeypatch) -> None:  # noqa: ANN001
    """build.ps1 downloads one pinned release and refuses another file (SHA-256) before PyInstaller runs; the
    spec puts the DLL and its LGPL licence in resources/nvda (and refuses to build without them); that is a
    place windows.py looks; the bundle's self-test fails without them."""
    build = (INSTALLERS / "windows" / "build.ps1").read_text()
    version = re.search(r'\$nvdaVersion = "(\d{4}\.\d+(?:\.\d+)?)"', build).group(1)
    sha = re.search(r'\$nvdaSha256 = "([0-9a-f]{64})"', build).group(1)
    url = f"https://download.nvaccess.org/releases/$nvdaVersion/nvda_${{nvdaVersion}}_controllerClient.zip"
    assert url in build and version and sha
    check = build.index("Get-FileHash $nvdaZip -Algorithm SHA256")
    refuse = build.index("if ($got -ne $nvdaSha256)", check)
    assert "throw" in build[refuse:build.index("\n", refuse)]
    assert refuse < build.index("Expand-Archive $nvdaZip") < build.index("-m PyInstaller")
    assert 'zip\\x64\\nvdaControllerClient.dll" "$nvdaDir\\nvdaControllerClient.dll"' in build
    assert 'zip\\license.txt" "$nvdaDir\\license.txt"' in build
    spec = (INSTALLERS / "lumen.spec").read_text()
    assert 'nvda = ROOT / "build" / "nvda-controller"' in spec and "$nvdaDir = \"build\\nvda-controller\"" in build
    assert 'binaries.append((str(nvda / "nvdaControllerClient.dll"), "resources/nvda"))' in spec
    assert 'datas.append((str(nvda / "license.txt"), "resources/nvda"))' in spec
    assert "binaries=binaries" in spec and "raise SystemExit" in spec[spec.index("if WINDOWS:"):spec.index("binaries.append")]

    from desktop.speech_output import windows

    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert tmp_path / "resources" / "nvda" / "nvdaControllerClient.dll" in windows._nvda_dll_candidates()

    sys.path.insert(0, str(INSTALLERS))
    try:
        import lumen_entry
    finally:
        sys.path.remove(str(INSTALLERS))
    present, missing = lumen_entry.bundled_files("win32", str(tmp_path))
    assert present == [] and [m.split()[0] for m in missing] == ["resources/nvda/nvdaControllerClient.dll",
                                                                  "resources/nvda/license.txt"]
    (tmp_path / "resources" / "nvda").mkdir(parents=True)
    for name in ("nvdaControllerClient.dll", "license.txt"):
        (tmp_path / "resources" / "nvda" / name).write_bytes(b"x")
    assert lumen_entry.bundled_files("win32", str(tmp_path)) == (list(lumen_entry.FILES["win32"]), [])
    assert lumen_entry.bundled_files("linux", str(tmp_path)) == ([], [])
