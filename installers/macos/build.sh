#!/usr/bin/env bash
# Build Lumen for macOS: Lumen.app (PyInstaller, CPU/MPS torch) and a .dmg with an Applications link.
#   bash installers/macos/build.sh        # on a Mac, Python 3.11; writes build/installers/macos/
# Apple silicon only: torch >= 2.4 publishes no Intel-Mac wheels.
# Signing: set LUMEN_CODESIGN_ID="Developer ID Application: ..." to sign with the hardened runtime,
# a secure timestamp and installers/macos/entitlements.plist (the microphone); set also
# LUMEN_NOTARY_PROFILE (a `xcrun notarytool store-credentials` profile) to notarise and staple the
# dmg. Unsigned builds are for testing only: since macOS 15 right-click > Open no longer opens them
# (System Settings > Privacy & Security > Open Anyway does).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build/installers/macos
VENV=build/venv-macos
[ -x "$VENV/bin/python" ] || python3.11 -m venv "$VENV"
PY="$VENV/bin/python"
[ "$(uname -m)" = arm64 ] || { echo "torch >= 2.4 has no Intel-Mac wheels: build on Apple silicon" >&2; exit 2; }
"$PY" -m pip install --upgrade pip
"$PY" -m pip install torch            # macOS wheels are CPU + MPS (Metal)
"$PY" -m pip install ".[voice,bundle]"   # voice: faster-whisper, its model, sounddevice (PortAudio)
"$PY" -m PyInstaller --noconfirm --clean --distpath "$OUT/dist" --workpath "$OUT/work" installers/lumen.spec
APP="$OUT/dist/Lumen.app"
"$APP/Contents/MacOS/lumen" --bundle-self-test      # every optional part imports, or the build fails
"$APP/Contents/MacOS/lumen" models list >/dev/null   # the bundle starts and its torch-free path works
if [ -n "${LUMEN_CODESIGN_ID:-}" ]; then
  codesign --deep --force --options runtime --timestamp --entitlements installers/macos/entitlements.plist \
    --sign "$LUMEN_CODESIGN_ID" "$APP"
  codesign --verify --deep --strict "$APP"
fi
VERSION=$("$PY" -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")
STAGE="$OUT/dmg"; rm -rf "$STAGE"; mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "Lumen" -srcfolder "$STAGE" -ov -format UDZO "$OUT/Lumen-$VERSION-macos-$(uname -m).dmg"
DMG="$OUT/Lumen-$VERSION-macos-$(uname -m).dmg"
if [ -n "${LUMEN_CODESIGN_ID:-}" ] && [ -n "${LUMEN_NOTARY_PROFILE:-}" ]; then
  codesign --timestamp --sign "$LUMEN_CODESIGN_ID" "$DMG"
  xcrun notarytool submit "$DMG" --keychain-profile "$LUMEN_NOTARY_PROFILE" --wait
  xcrun stapler staple "$DMG"
fi
echo "dmg: $DMG"
