#!/usr/bin/env bash
# The one test command (README and CI): set up with the test tools, then run the tests.
#   bash scripts/test.sh            # both tiers: unit and system (what CI runs)
#   bash scripts/test.sh --fast     # the unit tier only (-m "not system"): the developer's loop, under 2 minutes
# Other arguments go to pytest (e.g. a test file, -k NAME, -x). tests/conftest.py says which tests are system tests.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=()
if [ "${1:-}" = "--fast" ]; then
  shift
  tier=(-m "not system")
fi
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest "${tier[@]}" "$@"
