#!/usr/bin/env bash
# One unattended GPU check of shapeot's engine (issue 18), at most ~8 minutes on an H100/H200:
#   0. install shapeot (pip, from the package registry; falls back to PYTHONPATH when offline),
#   1. the GPU-marked tests (Triton kernels compiled on CUDA),
#   2. value + gradient at 10k, 100k, 1M points (blur 1 % of the diameter, scaling 0.5) against
#      a float64 reference, beside GeomLoss tensorized and FlashSinkhorn when importable,
#   3. registration of the 10k sample brains and of a 164k-vertex pair on cuda.
# Each stage has its own timeout; a failure is recorded and the next stage runs. The results
# go to benchmarks/results/gpu-<card>-<date>.json (every row: peak GPU memory, host max RSS).
#
#   bash benchmarks/gpu/run.sh             # on the GPU machine
#   bash benchmarks/gpu/run.sh --dry-run   # anywhere: tiny sizes on the CPU, same code paths
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1

if [ $DRY = 1 ]; then
  CARD=dry-run-cpu
  SIZES=${SIZES:-2000,5000}; REG_SIZES=10k; REG_ARGS="--device cpu --subsample 8"
  T_INSTALL=5; T_TESTS=120; T_ENGINE=300; T_REG=300
else
  CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  SIZES=${SIZES:-10000,100000,1000000}; REG_SIZES=10k,164k; REG_ARGS=""
  # Worst case 40 + 30 + 30 + 80 + 170 + 110 s = 7.7 min.
  T_INSTALL=40; T_TESTS=80; T_ENGINE=170; T_REG=110
fi
CARD=$(echo "${CARD:-no-gpu}" | tr -c 'A-Za-z0-9._-' '-' | sed 's/-*$//')
STAMP=$(date +%Y-%m-%d)
OUTDIR="$ROOT/benchmarks/results"
WORK=$(mktemp -d)
mkdir -p "$OUTDIR"
OUT="$OUTDIR/gpu-$CARD-$STAMP.json"
echo "[gpu] card=$CARD out=$OUT work=$WORK"

# stage NAME TIMEOUT CMD...: run with a timeout, keep its log and exit status.
stage() {
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s.%N)
  echo "[gpu] stage $name (timeout ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  local t1=$(date +%s.%N)
  echo "$name $rc $(awk "BEGIN{print $t1 - $t0}")" >>"$WORK/stages.txt"
  tail -n 5 "$WORK/$name.log"
  echo "[gpu] stage $name: exit $rc"
}

# 0. Install (no dependencies pulled over an existing CUDA torch).
if [ $DRY = 1 ]; then
  stage install "$T_INSTALL" "$PY" -c "import shapeot, torch; print('using', shapeot.__file__, torch.__version__)"
else
  PIP="$PY -m pip install --retries 1 --timeout 15"
  stage install "$T_INSTALL" $PIP --no-deps --no-build-isolation -e "$ROOT"
  # The engine's own needs, only when missing (torch and triton come with CUDA torch builds).
  "$PY" -c "import numba" 2>/dev/null || stage install-numba 30 $PIP numba
  "$PY" -c "import geomloss, flash_sinkhorn" 2>/dev/null || stage install-peers 30 $PIP --no-deps geomloss flash-sinkhorn
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# 1. GPU-marked tests (on a CPU dry run: the Triton tests under the interpreter instead).
if [ $DRY = 1 ]; then
  stage tests "$T_TESTS" "$PY" -m pytest -q -p no:cacheprovider -o addopts="" tests/engine/test_triton.py \
    -k "all_pairs_kernel or runs_cover" --junitxml="$WORK/tests.xml"
else
  stage tests "$T_TESTS" "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -m gpu tests/engine \
    --junitxml="$WORK/tests.xml"
fi

# 2. The engine beside its peers.
stage engine "$T_ENGINE" "$PY" "$ROOT/benchmarks/gpu/bench_engine.py" --out "$WORK/engine.json" \
  --sizes "$SIZES" --budget $((T_ENGINE - 20))

# 3. Registration end to end.
stage register "$T_REG" "$PY" "$ROOT/benchmarks/gpu/register_gpu.py" --out "$WORK/register.json" \
  --sizes "$REG_SIZES" --budget $((T_REG - 20)) $REG_ARGS

# Merge everything (stage logs' tails included) into one JSON named after the card.
"$PY" "$ROOT/benchmarks/gpu/merge.py" "$WORK" "$OUT" "$CARD"
echo "[gpu] wrote $OUT"
