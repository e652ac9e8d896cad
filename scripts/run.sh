#!/usr/bin/env bash
# One command on a fresh machine: set Lumen up (first time only) and start the app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lumen "$@"
