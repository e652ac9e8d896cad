#!/usr/bin/env bash
# Install the unpacked Lumen bundle for the current user (no root needed):
#   tar xzf lumen-*-linux-x86_64.tar.gz && lumen/install.sh
# Copies it to ~/.local/opt/lumen, links ~/.local/bin/lumen, adds the menu entry.
# Add --autostart to start Lumen when you log in. Speech needs espeak-ng (apt install espeak-ng).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DEST="$HOME/.local/opt/lumen"
if [ "$HERE" != "$DEST" ]; then
  rm -rf "$DEST" && mkdir -p "$DEST" && cp -a "$HERE/." "$DEST/"
fi
mkdir -p "$HOME/.local/bin" "${XDG_DATA_HOME:-$HOME/.local/share}/applications" "${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
ln -sf "$DEST/lumen" "$HOME/.local/bin/lumen"
cp "$DEST/lumen.png" "${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps/lumen.png"
sed "s|^Exec=lumen|Exec=$DEST/lumen|" "$DEST/lumen.desktop" > "${XDG_DATA_HOME:-$HOME/.local/share}/applications/lumen.desktop"
if [ "${1:-}" = "--autostart" ]; then
  mkdir -p "${XDG_CONFIG_HOME:-$HOME/.config}/autostart"
  cp "${XDG_DATA_HOME:-$HOME/.local/share}/applications/lumen.desktop" "${XDG_CONFIG_HOME:-$HOME/.config}/autostart/lumen.desktop"
fi
command -v espeak-ng >/dev/null 2>&1 || echo "Note: install espeak-ng for Lumen's own voice (your screen reader works without it)."
echo "Lumen is installed. Start it from the menu, or run: lumen    (check the setup with: lumen --check)"
