#!/usr/bin/env bash
# Quick start, command 2: install what is missing, lint, then run the tests.
#   ./test.sh          the whole suite: what CI runs (.ci/run)
#   ./test.sh --fast   the tests not marked slow: the developer's loop, under 3 minutes on 2 cores
# Any other argument goes to pytest. pytest exits 5 when it collected no test; like any
# non-zero status, that fails this script.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh dev keops samples
lane=()
args=()
for a in "$@"; do
    if [ "$a" = "--fast" ]; then lane=(-m "not slow"); else args+=("$a"); fi
done
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "${lane[@]}" "${args[@]}"
