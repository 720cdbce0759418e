#!/usr/bin/env bash
# One unattended GPU check of shapeot's engine (issue 18), at most ~8 minutes on an H100/H200:
#   0. make shapeot importable: the GPU machine reaches no package registry, so the wheels it
#      lacks travel in .whl/ (made here by benchmarks/gpu/fetch_wheels.sh, carried with the
#      tree) and are installed offline into a scratch folder; shapeot itself runs from the tree,
#   1. the GPU-marked tests (Triton kernels compiled on CUDA),
#   2. value + gradient at 10k, 100k, 1M points (blur 1 % of the diameter, scaling 0.5) against
#      a float64 reference, beside GeomLoss tensorized and FlashSinkhorn when importable,
#   3. registration of the 10k sample brains and of a 164k-vertex pair on cuda.
# Each stage has its own timeout; a failure is recorded and the next stage runs. The results
# go to benchmarks/results/gpu-<card>-<date>.json (every row: peak GPU memory, host max RSS).
#
#   bash benchmarks/gpu/fetch_wheels.sh    # here, once: .whl/ (git-ignored)
#   bash benchmarks/gpu/run.sh             # on the GPU machine (device tool: carry [".whl"])
#   bash benchmarks/gpu/run.sh --dry-run   # anywhere: tiny sizes on the CPU, same code paths
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1

if [ $DRY = 1 ]; then
  CARD=dry-run-cpu
  SIZES=${SIZES:-1000,2000}; REG_SIZES=10k; REG_ARGS="--device cpu --subsample 8"
  T_INSTALL=60; T_TESTS=120; T_ENGINE=300; T_REG=300
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

# 0. Install: the carried wheels, offline and without dependencies (never over the image's CUDA
# torch); shapeot from the tree itself.
SITE="$WORK/site"
if [ $DRY = 0 ] && ls "$ROOT"/.whl/*.whl >/dev/null 2>&1; then
  stage install-wheels "$T_INSTALL" "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target "$SITE" "$ROOT"/.whl/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
stage install "$T_INSTALL" "$PY" -c "import shapeot, torch, igl, nibabel; print('using', shapeot.__file__, 'torch', \
torch.__version__, 'cuda', torch.cuda.is_available())"

# 1. GPU-marked tests (on a CPU dry run: the Triton tests under the interpreter instead).
if [ $DRY = 1 ]; then
  stage tests "$T_TESTS" "$PY" -m pytest -q -p no:cacheprovider -o addopts="" tests/engine/test_triton.py \
    -k "all_pairs_kernel or runs_cover" --junitxml="$WORK/tests.xml"
else
  stage tests "$T_TESTS" "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -m gpu tests/engine/test_triton.py \
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
