#!/usr/bin/env bash
# Build Lumen for Linux: a PyInstaller one-dir bundle and a tarball with a desktop entry.
#   bash installers/linux/build.sh            # uses ./.venv (CPU torch), writes build/installers/linux/
# Environment: PYTHON (default .venv/bin/python), LUMEN_DIST (output folder),
#   LUMEN_BUNDLE_SPEECH_INPUT=0 to leave out offline speech input (saves ~230 MB),
#   LUMEN_CLEAN=1 to rebuild from scratch (else PyInstaller reuses its analysis in the work folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
OUT=${LUMEN_DIST:-build/installers/linux}
if "$PY" -c "import torch,sys; sys.exit(0 if torch.version.cuda is None else 1)"; then :; else
  echo "warning: this environment has a CUDA torch; the Linux tarball is meant to carry the CPU build" >&2
fi
"$PY" -c "import PyInstaller" 2>/dev/null || { echo "PyInstaller is missing: $PY -m pip install -e '.[bundle]'" >&2; exit 2; }
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm ${LUMEN_CLEAN:+--clean} --log-level WARN --distpath "$OUT/dist" --workpath "$OUT/work" installers/lumen.spec
APP="$OUT/dist/lumen"
"$APP/lumen" --bundle-self-test || { echo "the bundle lacks a part (see MISSING above)" >&2; exit 1; }
install -m 644 installers/linux/lumen.desktop "$APP/lumen.desktop"
install -m 644 resources/icons/lumen.png "$APP/lumen.png"
install -m 755 installers/linux/install.sh "$APP/install.sh"
VERSION=$("$PY" -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")
TARBALL="$OUT/lumen-$VERSION-linux-$(uname -m).tar.gz"
tar -C "$OUT/dist" -czf "$TARBALL" lumen
echo "bundle:  $APP ($(du -sh "$APP" | cut -f1))"
echo "tarball: $TARBALL ($(du -sh "$TARBALL" | cut -f1))"
echo "built in $(( $(date +%s) - start )) s"
