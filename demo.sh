#!/usr/bin/env bash
# Quick start, command 1: install what is missing, then run the main job on the sample brains.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh dev keops samples
exec .venv/bin/python -m shapeot demo "$@"
