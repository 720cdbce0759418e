"""Real pairs with no known truth (issue 16): does a preset fold, how much does it bend, how well does it fit.

    nice -n 10 .venv/bin/python benchmarks/real_pairs.py [--cases ...] [--presets nonrigid diffeomorphic]
                                                         [--n 5000] [--tag NAME]

Cases (every one is a pair of different real anatomies, so nothing is known about the right map):

* ``brain``: the fsaverage5 left pial surface onto the right one mirrored (x -> -x; 10,242 vertices);
* ``cohort``: sample_meshes/cohort subject_01 onto subject_02;
* ``lung``, ``retina``: the left organ of the segmented frog scan in the pyvista wheel onto the
  right one mirrored (``benchmarks/smooth.py``'s ``organ``: marching cubes, decimated to --n
  vertices); ``lung-cloud``, ``retina-cloud``: their vertices alone (point clouds, no faces;
  normals estimated). The frog's retina (~45 mm, 5k points) stands in for a hippocampus-sized
  smooth structure.

Columns: time (s) and the pre-alignment's share; Jacobian determinant det D phi at every source
vertex and at a 24^3 grid over the source's bounding box padded by 10 % (min, max; ``neg``: how
many are <= 0); folded triangles (meshes; counted with the map, shapeot.metrics.folded_triangles);
the warp's energy (``strain_rms``: sqrt(mean |D psi - I|_F^2) of the non-rigid part psi, and its
displacement RMS, mm) and how close it fits (symmetric point-to-surface Chamfer and HD95 after,
mm; point-to-point for clouds); peak memory of this process (VmHWM, GB). Writes
benchmarks/results/real-pairs[-<tag>]-<device>-<date>.json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_gb, table, write  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASES = ("brain", "cohort", "lung", "lung-cloud", "retina", "retina-cloud")


def _mirrored(shape):
    """x -> -x, faces reversed so that the normals still point outwards."""
    from shapeot.shapes import Shape

    p = np.array(shape.points, dtype=np.float64)
    p[:, 0] *= -1
    faces = None if shape.faces is None else np.asarray(shape.faces)[:, ::-1].copy()
    return Shape(p, faces, name=f"{shape.name} mirrored", units=shape.units)


def _cloud(shape):
    from shapeot.shapes import Shape

    return Shape(np.asarray(shape.points), None, name=f"{shape.name} (cloud)", units=shape.units)


def pair(case: str, n: int):
    """(source, target) of a case."""
    from shapeot.samples import sample_path
    from shapeot.shapes import load

    if case == "brain":
        return load(sample_path("fsaverage5_lh_pial.gii")), _mirrored(load(sample_path("fsaverage5_rh_pial.gii")))
    if case == "cohort":
        folder = ROOT / "sample_meshes" / "cohort"
        return load(folder / "subject_01.gii"), load(folder / "subject_02.gii")
    from smooth import organ

    name = {"lung": "lung", "retina": "eye_retina"}[case.split("-")[0]]
    left, right = organ(name, n, 0), _mirrored(organ(name, n, 1))
    return (_cloud(left), _cloud(right)) if case.endswith("cloud") else (left, right)


def grid(points: np.ndarray, k: int = 24, pad: float = 0.1) -> np.ndarray:
    """(k^3, 3) points of a regular grid over the bounding box of ``points`` padded by ``pad``."""
    lo, hi = points.min(0), points.max(0)
    lo, hi = lo - pad * (hi - lo), hi + pad * (hi - lo)
    axes = [np.linspace(lo[d], hi[d], k) for d in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def score(source, target, reg, seconds: float) -> dict:
    from shapeot.metrics import jacobian_determinants

    p = np.asarray(source.points)
    det_v = jacobian_determinants(reg.deformation, p, 1e-3 * reg.scale)
    det_g = jacobian_determinants(reg.deformation, grid(p), 1e-3 * reg.scale)
    after, before = reg.metrics["after"], reg.metrics["before"]
    surf = "chamfer_surface" in after
    return {"time_s": seconds, "prealign_s": reg.timings.get("prealign"),
            "det_min_vertices": float(det_v.min()), "det_max_vertices": float(det_v.max()),
            "det_min_grid": float(det_g.min()), "det_max_grid": float(det_g.max()),
            "neg": int((det_v <= 0).sum() + (det_g <= 0).sum()), "folded": after.get("folded"),
            "strain_rms": after.get("strain_rms"), "strain_max": after.get("strain_max"),
            "nonrigid_rms_mm": after.get("nonrigid_rms"),
            "chamfer_before": before["chamfer_surface" if surf else "chamfer"],
            "chamfer_after": after["chamfer_surface" if surf else "chamfer"],
            "hd95_after": after["hd95_surface" if surf else "hd95"], "distance": "surface" if surf else "points",
            "substeps": int(sum((h.substeps or 1) - 1 for h in reg.history)),
            "peak_rss_gb": peak_rss_gb()}


COLS = ["case", "preset", "time_s", "prealign_s", "det_min_vertices", "det_min_grid", "neg", "folded", "strain_rms",
        "nonrigid_rms_mm", "chamfer_after", "hd95_after", "substeps", "peak_rss_gb"]


def main(argv=None) -> None:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--presets", nargs="+", default=["nonrigid", "diffeomorphic"])
    ap.add_argument("--n", type=int, default=5000, help="vertices of the frog organs (decimated)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)

    from shapeot.registration import register

    rows = []
    for case in args.cases:
        source, target = pair(case, args.n)
        label = f"{case} ({source.n_points} -> {target.n_points})"
        print(label, flush=True)
        for preset in args.presets:
            t = time.perf_counter()
            reg = register(source, target, preset)
            row = {"case": label, "preset": preset, **score(source, target, reg, time.perf_counter() - t)}
            rows.append(row)
            print(table([row], COLS), flush=True)
    print()
    print(table(rows, COLS))
    info = machine()
    info.update(argv=sys.argv[1:] if argv is None else list(argv), n=args.n)
    print(f"wrote {write(f'real-pairs-{args.tag}' if args.tag else 'real-pairs', info, rows)}")


if __name__ == "__main__":
    main()
