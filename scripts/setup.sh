#!/usr/bin/env bash
# Sets up everything Lumen needs in ./.venv. Idempotent: a second run only checks.
#   bash scripts/setup.sh          # to run the app
#   bash scripts/setup.sh --dev    # also the test tools (what CI uses)
# Environment: LUMEN_TORCH overrides the torch requirement (e.g. "torch==2.13.0+cu126" with your index).
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PY=${PYTHON:-python3}
extras="gpu,train,voice"
# The llama.cpp language-model back-end is for machines without an NVIDIA card (the tests need it always).
if [ "$DEV" = 1 ] || ! command -v nvidia-smi >/dev/null 2>&1; then extras="$extras,llamacpp"; fi
[ "$DEV" = 1 ] && extras="$extras,dev"

# --- already set up? A complete run leaves a stamp of what it installed from (pyproject.toml, this script,
# LUMEN_TORCH) per set of extras; a --dev set-up also serves the app. With a matching stamp nothing else runs
# (no apt, no pip), so starting the app costs milliseconds. Change either file and the next run installs again.
inputs="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1) ${LUMEN_TORCH:-}"
stamp() { echo ".venv/.lumen-setup-$1"; }
for have in "$extras" "$extras,dev"; do
  if [ -x .venv/bin/python ] && [ "$(cat "$(stamp "$have")" 2>/dev/null)" = "$inputs" ]; then exit 0; fi
done

# --- system packages (Debian/Ubuntu). Others: see README "Other systems".
if command -v apt-get >/dev/null 2>&1; then
  pkgs="espeak-ng libespeak-ng1 alsa-utils libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libegl1 libgl1 tesseract-ocr tesseract-ocr-eng libportaudio2"
  # pulseaudio + libasound2-plugins: a private null output and microphone for the --check sound tests;
  # speech-dispatcher, orca: the real screen-reader tests (tests/desktop/test_speech_dispatcher.py, test_orca.py)
  # brltty, python3-brlapi: braille through a real BRLTTY (its virtual "vr" driver) in tests/desktop/test_brltty.py
  # strace: tests/test_offline_native.py watches a real engine session's system calls for network use
  [ "$DEV" = 1 ] && pkgs="$pkgs xvfb xdotool x11-utils sox dbus at-spi2-core python3-pyatspi pulseaudio libasound2-plugins speech-dispatcher orca brltty python3-brlapi strace"
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "Installing system packages:$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
  fi
fi

# --- Python environment
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPIP=".venv/bin/python -m pip"
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  # torch first, so that nothing later pulls a build we did not choose.
  if [ -n "${LUMEN_TORCH:-}" ]; then
    $VPIP install "$LUMEN_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    $VPIP install "torch>=2.4"                     # CUDA build from PyPI
  else
    # CPU-only machine: the small CPU build. The CPU index is tried first; where only PyPI is
    # reachable, pip's configured local wheel or PyPI's build is used.
    $VPIP install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu --timeout 15 2>/dev/null \
      || $VPIP install torch==2.13.0
  fi
fi
# llama-cpp-python (the llamacpp extra) has no CPU wheel on PyPI: build it once from source (a portable
# x86-64/arm64 CPU build, only the libraries the Python package installs: no llava, tools or server),
# keep the wheel in a cache keyed on its version, and install from there ever after. A build already
# in .venv (a prebuilt or GPU wheel installed by hand) is kept. LUMEN_LLAMACPP_CMAKE_ARGS adds e.g.
# -DGGML_CUDA=ON or -DGGML_VULKAN=ON.
LLAMACPP_VERSION=$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
wheels="${LUMEN_WHEEL_CACHE:-$HOME/.cache/lumen-wheels}/llama-cpp-python-$LLAMACPP_VERSION"
mkdir -p "$wheels"
if [[ ",$extras," == *,llamacpp,* ]] && ! ls "$wheels"/llama_cpp_python-"$LLAMACPP_VERSION"-*.whl >/dev/null 2>&1 \
   && [ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null)" != "$LLAMACPP_VERSION" ]; then
  echo "Building llama-cpp-python $LLAMACPP_VERSION from source (once; the wheel is kept in $wheels)"
  if ! CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF ${LUMEN_LLAMACPP_CMAKE_ARGS:-}" \
      CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
      $VPIP wheel -q --no-deps "llama-cpp-python==$LLAMACPP_VERSION" -C "build.targets=llama;llama-common" -w "$wheels"; then
    # The tests need it; the app does not (the language model then runs in torch, and `lumen --check` says so).
    [ "$DEV" = 1 ] && exit 1
    echo "llama-cpp-python could not be built (a C++ compiler is needed): Lumen runs without the llama.cpp back-end." >&2
    echo "Install a compiler, then delete .venv/.lumen-setup-* and run this again to add it." >&2
    install_extras="${extras/,llamacpp/}"
  fi
fi
$VPIP install -q --find-links "$wheels" -e ".[${install_extras:-$extras}]"
echo "$inputs" > "$(stamp "$extras")"
echo "Lumen is set up in $(pwd)/.venv"
