"""Stage 3 of benchmarks/gpu/run.sh: end-to-end registration on the GPU.

Two pairs, both the sample left pial surface onto the mirrored right one (fsaverage5, mm):
the 10,242-vertex meshes as shipped, and a 163,842-vertex pair made by subdividing both twice
(trimesh's ``subdivide_loop``; plain midpoint subdivision when trimesh is missing, recorded in
the row). ``shapeot.register(src, tgt, RegistrationConfig.from_preset("nonrigid", engine={"device": ...}))``,
timed end to end (a warm-up registration of the small pair first, untimed, compiles the
kernels), with the metrics the pipeline reports.

    python benchmarks/gpu/register_gpu.py --out rows.json [--sizes 10k,164k] [--budget 150]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Rows, device, sync  # noqa: E402


def _midpoint_subdivide(points: np.ndarray, faces: np.ndarray):
    """Each triangle into four through its edge midpoints (shared edges share their midpoint)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, inv = np.unique(edges, axis=0, return_inverse=True)
    mid = len(points) + inv.reshape(3, -1).T  # (F, 3): midpoints of edges 01, 12, 20
    new_points = np.concatenate([points, points[uniq].mean(axis=1)])
    a, b, c = faces.T
    m01, m12, m20 = mid.T
    new_faces = np.concatenate([np.stack(t, 1) for t in
                                ((a, m01, m20), (b, m12, m01), (c, m20, m12), (m01, m12, m20))])
    return new_points, new_faces


def subdivided(shape, times: int):
    """(points, faces, method) after ``times`` subdivisions."""
    pts, faces = np.asarray(shape.points, dtype=np.float64), np.asarray(shape.faces, dtype=np.int64)
    try:
        import trimesh

        mesh = trimesh.Trimesh(pts, faces, process=False)
        for _ in range(times):
            mesh = mesh.subdivide_loop()
        return np.asarray(mesh.vertices), np.asarray(mesh.faces), "trimesh.subdivide_loop"
    except ImportError:
        for _ in range(times):
            pts, faces = _midpoint_subdivide(pts, faces)
        return pts, faces, "midpoint (trimesh missing)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--sizes", default="10k,164k")
    p.add_argument("--budget", type=float, default=150.0)
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--subsample", type=int, default=1, help="keep every k-th vertex (CPU dry runs)")
    args = p.parse_args()
    warnings.simplefilter("ignore")

    import shapeot
    from shapeot import Shape
    from shapeot.registration.config import RegistrationConfig

    dev = args.device or device()
    rows = Rows(args.out, "register", args.budget)
    from shapeot.samples import sample_path

    lh = shapeot.load(sample_path("fsaverage5_lh_pial.gii"))
    rh = shapeot.load(sample_path("fsaverage5_rh_pial.gii"))
    flip = np.array([-1.0, 1.0, 1.0])

    def pair(size: str):
        if size == "10k":
            mirrored = Shape(np.asarray(rh.points) * flip, np.asarray(rh.faces)[:, ::-1].copy(), name="rh mirrored")
            src, tgt, how = lh, mirrored, "as shipped"
        else:
            ps, fs, how = subdivided(lh, 2)
            pt, ft, _ = subdivided(rh, 2)
            src, tgt = Shape(ps, fs, name="lh x16"), Shape(pt * flip, ft[:, ::-1].copy(), name="rh x16 mirrored")
        if args.subsample > 1:  # point clouds, for quick CPU runs of the code path
            src = Shape(np.asarray(src.points)[::args.subsample], name=src.name)
            tgt = Shape(np.asarray(tgt.points)[::args.subsample], name=tgt.name)
        return src, tgt, how

    config = RegistrationConfig.from_preset("nonrigid", engine={"device": dev})
    warm = {}
    for size in [s for s in args.sizes.split(",") if s]:
        if rows.left() < 20:
            rows.measure(f"register {size}", lambda: {"error": "stage budget spent"}, size=size)
            continue

        def run(size=size):
            src, tgt, how = pair(size)
            if not warm:  # compile the kernels once, off the clock
                t = time.perf_counter()
                shapeot.register(src, tgt, config)
                sync()
                warm["s"] = time.perf_counter() - t
            t = time.perf_counter()
            reg = shapeot.register(src, tgt, config)
            sync()
            elapsed = time.perf_counter() - t
            metrics = reg.metrics.get("after", {}) if isinstance(reg.metrics, dict) else {}
            return {"time_s": elapsed, "warmup_s": warm.get("s"), "vertices": [len(src.points), len(tgt.points)],
                    "subdivision": how, "device": dev, "timings": getattr(reg, "timings", None),
                    "metrics_after": {k: v for k, v in metrics.items() if isinstance(v, (int, float))}}
        rows.measure(f"register nonrigid {size}", run, size=size)
    rows.write()
    print("register stage done", flush=True)


if __name__ == "__main__":
    main()
