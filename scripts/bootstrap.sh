#!/usr/bin/env bash
# Installs what shapeot needs into ./.venv, idempotently: system packages (when root and apt-get
# exists), a Python >= 3.11 virtual environment, torch (the CPU build when no CUDA is present),
# then shapeot itself in editable mode with the extras given as arguments.
#   scripts/bootstrap.sh dev keops      -> pip install -e ".[dev,keops]"
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="$(IFS=,; echo "$*")"
VENV="${SHAPEOT_VENV:-.venv}"
STAMP="$VENV/.shapeot-installed-$(echo "${EXTRAS}" | tr ',' '-')"

# System packages: a C++ compiler for KeOps, X/GL libraries for VTK and the GUI tests.
APT_PKGS="g++ python3-venv libgl1 libglu1-mesa libxrender1 libxext6 libx11-6 libxt6 libegl1 libosmesa6 xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=""
    for p in $APT_PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "[bootstrap] apt-get install:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null \
            || echo "[bootstrap] warning: some system packages could not be installed:$missing"
    fi
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    for c in python3.11 python3.12 python3.13 python3; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then PY="$c"; break; fi
    done
fi
[ -n "$PY" ] || { echo "[bootstrap] error: Python >= 3.11 not found (shapeot reads TOML with tomllib); install python3.11 and retry" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    echo "[bootstrap] creating $VENV with $($PY --version)"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then exit 0; fi

# torch first: without it a plain "torch>=2.4" requirement pulls a multi-GB CUDA build.
if ! "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        echo "[bootstrap] installing torch (CUDA build)"; "${PIP[@]}" install "torch>=2.4"
    else
        echo "[bootstrap] installing torch (CPU build)"
        "${PIP[@]}" install "torch==2.13.0" 2>/dev/null \
            || "${PIP[@]}" install "torch>=2.4" --index-url https://download.pytorch.org/whl/cpu \
            || "${PIP[@]}" install "torch>=2.4"
    fi
fi
echo "[bootstrap] installing shapeot${EXTRAS:+[$EXTRAS]}"
log="$(mktemp)"
if ! "${PIP[@]}" install -e ".${EXTRAS:+[$EXTRAS]}" >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" >&2; rm -f "$log"
    echo "[bootstrap] error: pip install failed (see above)" >&2; exit 1
fi
rm -f "$log"
"$VENV/bin/python" -c 'import shapeot, torch' || { echo "[bootstrap] error: install failed" >&2; exit 1; }
touch "$STAMP"
