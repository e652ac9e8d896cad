#!/usr/bin/env bash
# Smoke-test a built Linux bundle, using only the bundle (no source tree, no venv):
#   1. `lumen models list` (torch-free path) and `lumen models import` of official-format files:
#      the frozen app spawns its converter process;
#   2. `lumen --check --engine --device cpu`: the frozen app spawns the engine process, loads the
#      model and describes a test picture;
#   3. the GUI app starts offscreen, its engine process starts and reports the model ready; after
#      the app is killed the engine process must go away too;
#   4. install.sh installs the bundle into a fresh home (menu entry, autostart) and the copy starts.
# The model: the bundled demo model (resources/demo_model) if the bundle has one, else the shared
# parity fixtures (tiny official-format files), which the bundle imports whenever they are there.
#   bash installers/linux/smoke_test.sh [BUNDLE_DIR]     (default build/installers/linux/dist/lumen)
set -euo pipefail
cd "$(dirname "$0")/../.."
APP_DIR="$(cd "${1:-build/installers/linux/dist/lumen}" && pwd)"
APP="$APP_DIR/lumen"
FIXTURES="${LUMEN_SHARED:-$(pwd)/../shared}/fixtures/reference/checkpoints"
T="$(mktemp -d)"
APP_PID=""
cleanup() { [ -n "$APP_PID" ] && kill -9 "$APP_PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
export LUMEN_CONFIG_DIR="$T/config" LUMEN_MODELS_DIR="$T/models" XDG_STATE_HOME="$T/state" XDG_CACHE_HOME="$T/cache"
export XDG_DATA_HOME="$T/data" QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 PYTHONNOUSERSITE=1
unset PYTHONPATH VIRTUAL_ENV
fail() { echo "SMOKE FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
t0=$(date +%s)

step "models list (torch-free path)"
"$APP" models list --json > "$T/list.json" || fail "lumen models list"
grep -q '"vicuna0-7b"' "$T/list.json" || fail "catalogue missing from models list"

if [ -d "$FIXTURES" ]; then
  step "import the parity fixtures' official-format files with the bundle's converter"
  SRC="$T/official"; mkdir -p "$SRC"
  cp "$FIXTURES/eva_vit_g.pth" "$FIXTURES/blip2_pretrained_flant5xxl.pth" "$SRC/"
  cp "$FIXTURES/pretrained_minigpt4_tiny.pth" "$SRC/prerained_minigpt4_7b.pth"
  cp -r "$FIXTURES/vicuna-tiny" "$SRC/vicuna-7b"
  "$APP" models import "$SRC" --model vicuna0-7b --preset tiny || fail "lumen models import"
  "$APP" models verify vicuna0-7b || fail "lumen models verify"
  MODEL="$LUMEN_MODELS_DIR/vicuna0-7b"
fi
if [ -f "$APP_DIR/_internal/resources/demo_model/lumen_model.json" ]; then
  MODEL="$APP_DIR/_internal/resources/demo_model"
  step "the engine checks use the bundled demo model"
fi
[ -n "${MODEL:-}" ] || fail "no demo model in the bundle and no fixtures at $FIXTURES"
mkdir -p "$LUMEN_CONFIG_DIR"
printf '{"schema_version": 1, "model_dir": "%s", "device": "cpu"}\n' "$MODEL" > "$LUMEN_CONFIG_DIR/settings.json"

step "lumen --check --engine (spawned engine process from the frozen app)"
"$APP" --check --engine --device cpu --json > "$T/check.json" || { cat "$T/check.json"; fail "lumen --check --engine"; }
python3 - "$T/check.json" <<'PY' || fail "engine did not answer"
import json, sys
report = json.load(open(sys.argv[1]))
engine = next(c for c in report["checks"] if c["area"] == "Engine")
print(f"   frozen={report['frozen']}  engine: {engine['summary']}  [{engine['detail']}]")
sys.exit(0 if report["frozen"] and engine["ready"] else 1)
PY

step "GUI starts offscreen, engine process reports the model ready"
"$APP" --no-hotkeys --debug > "$T/app.out" 2>&1 &   # --debug: the log records what is announced
APP_PID=$!
LOG="$XDG_STATE_HOME/Lumen/log/lumen.log"
for _ in $(seq 1 180); do
  grep -q "notify: Model ready" "$LOG" 2>/dev/null && break
  kill -0 "$APP_PID" 2>/dev/null || { cat "$T/app.out"; fail "the app exited early"; }
  sleep 1
done
grep -q "notify: Model ready" "$LOG" 2>/dev/null || { cat "$T/app.out" "$LOG" 2>/dev/null | tail -30; fail "no 'Model ready' within 180 s"; }
ENGINE_PIDS=$(pgrep -P "$APP_PID" || true)
[ -n "$ENGINE_PIDS" ] || fail "no engine child process"
for p in $ENGINE_PIDS; do echo "   engine child pid $p: $(tr '\0' ' ' < /proc/$p/cmdline | cut -c1-120)"; done
grep -E "engine started|notify: Model ready" "$LOG" | sed 's/^/   log: /'
kill -TERM "$APP_PID"; wait "$APP_PID" 2>/dev/null || true; APP_PID=""
for _ in $(seq 1 20); do
  alive=""; for p in $ENGINE_PIDS; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
  [ -z "$alive" ] && break; sleep 0.5
done
[ -z "$alive" ] || { kill -9 $alive; fail "engine process outlived the app:$alive"; }
step "install.sh into a fresh home, then run the installed copy"
HOME="$T/home" XDG_DATA_HOME="$T/home/.local/share" XDG_CONFIG_HOME="$T/home/.config" bash "$APP_DIR/install.sh" --autostart >/dev/null \
  || fail "install.sh"
[ -L "$T/home/.local/bin/lumen" ] || fail "no ~/.local/bin/lumen link"
grep -q "^Exec=$T/home/.local/opt/lumen/lumen --show$" "$T/home/.local/share/applications/lumen.desktop" || fail "menu entry"
[ -f "$T/home/.config/autostart/lumen.desktop" ] || fail "autostart entry"
"$T/home/.local/bin/lumen" models list > /dev/null || fail "the installed copy does not start"
echo "SMOKE OK in $(( $(date +%s) - t0 )) s"
