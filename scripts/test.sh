#!/usr/bin/env bash
# Installs (if needed) and runs the test suite. Slow checks: `bash scripts/test.sh -m slow`.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "setup failed"; exit 1; }
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$HOME/.cache/tunesmith/numba}"
export MPLBACKEND=Agg
python3 -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi
exit $rc
