#!/usr/bin/env bash
# Run HERE (where PyPI is reachable), before a GPU session: downloads into .whl/ (git-ignored)
# the wheels that the GPU machine lacks, for its Python 3.12 on x86-64 Linux. The GPU machine
# reaches no package registry; its image has torch, triton, numpy, scipy, numba, scikit-image,
# tqdm, h5py and pytest (see the device tool's KINDS.md). run.sh installs .whl/*.whl offline.
#
#   bash benchmarks/gpu/fetch_wheels.sh        # then: run with carry [".whl"]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
# shapeot's core needs missing there, the 164k pair's subdivision (trimesh) and the peers.
# pykeops is left out on purpose: it crashes on these GPU machines (DESIGN.md).
WANT="meshio nibabel pynrrd libigl trimesh geomloss flash-sinkhorn==0.4.1"
for pkg in $WANT; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$pkg" \
    || echo "fetch_wheels: no wheel for $pkg (it is skipped; run.sh records what is missing)"
done
ls -la .whl
du -sh .whl
