#!/usr/bin/env bash
# Quick start, command 1: install what is missing, then run the main job on the sample brains.
#
# With a display, the desktop app opens on the two sample brains (the fsaverage5 left pial
# surface and the mirrored right one) and registers them (preset nonrigid).
# Without one (no $DISPLAY, or SHAPEOT_HEADLESS=1), the same job runs headless: `shapeot demo`
# (OT match, then registration; results under out/demo/, or -o DIR) and an off-screen rendering
# of the result, out/demo/lh_to_mirrored_rh.png. Arguments (for `shapeot demo`) select the
# headless run too.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh dev keops samples
if [ -z "${SHAPEOT_HEADLESS:-}" ] && [ "$#" -eq 0 ] \
   && .venv/bin/python -c 'import sys; from shapeot.ui.app import display_available; sys.exit(not display_available())' 2>/dev/null; then
    echo "[demo] opening the desktop app on the sample brains (SHAPEOT_HEADLESS=1 ./demo.sh runs it headless)"
    exec .venv/bin/python -m shapeot.ui --demo
fi
.venv/bin/python -m shapeot demo --overwrite "$@"
exec .venv/bin/python -m shapeot.ui.render "$@"
