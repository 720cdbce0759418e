"""Registration ablation on smooth organs (issue 16): presets and non-rigid variants side by side.

    nice -n 10 .venv/bin/python benchmarks/smooth.py [--organs liver kidney] [--n 3000] [--variants ...] [--tag NAME]

Data: organs of the segmented frog scan that ships inside the pyvista wheel
(``pyvista/examples/frog_tissues.vti``, 500 x 470 x 136 voxels of 1 x 1 x 1.5 mm). shapeot does
not read ``.vti``, so the label map is read with pyvista, the label's largest connected
component is smoothed (Gaussian, 1 voxel) and extracted with scikit-image marching cubes in
world mm (the image's origin and spacing), then decimated to ``--n`` vertices. Label values are
those of VTK's frog example (1 blood, 2 brain, 3 duodenum, 4 eye_retina, 5 eye_white, 6 heart,
7 ileum, 8 kidney, 9 l_intestine, 10 liver, 11 lung, 12 nerve, 13 skeleton, 14 spleen,
15 stomach); the wheel carries no names.

Each organ is warped by the seeded generator ``warp_pair(shape, seed=1, amplitude=A, angle_deg=20,
translation_mm=15, width=W, resample=True)`` with A = ``--amplitude`` x its diameter and W =
``--width`` x its diameter; the target is resampled along its surface (no vertex twins).

Columns: err_mean / err_p95 (mm, per source vertex against the truth), tan_share (share of the
squared error that is tangential to the target surface at the truth point), edge (mean edge
length of the source, mm), err/edge (the goal: <= 0.35), chamfer_s (symmetric surface Chamfer
to the target, mm), jac_min and folded (reg.metrics["after"]), time_s, and the plan marginal
errors recorded in reg.history at the non-rigid levels (min / median / max; "pre" for the
pre-alignment's rounds). All variants run in one process, one after the other (same load).
Writes benchmarks/results/smooth[-<tag>]-<device>-<date>.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table, write  # noqa: E402

FROG_LABELS = {"blood": 1, "brain": 2, "duodenum": 3, "eye_retina": 4, "eye_white": 5, "heart": 6, "ileum": 7,
               "kidney": 8, "l_intestine": 9, "liver": 10, "lung": 11, "nerve": 12, "skeleton": 13, "spleen": 14,
               "stomach": 15}


MNI_PATH = Path(__file__).resolve().parents[1] / "sample_meshes" / "mni152_tissue_labels_2mm.nii.gz"
MNI_LABELS = {"gray_matter": 1, "white_matter": 2}  # sample_meshes/README.md


def frog_path() -> str:
    import pyvista

    path = os.path.join(os.path.dirname(pyvista.__file__), "examples", "frog_tissues.vti")
    if not os.path.exists(path):
        raise SystemExit(f"no frog_tissues.vti in the pyvista wheel ({path})")
    return path


def organ(name: str, n: int, component: int = 0):
    """The surface of one frog organ, in mm, decimated to about n vertices: its largest connected
    component, or its second largest with ``component=1`` (the other lung, eye, ...)."""
    import pyvista
    from scipy import ndimage
    from skimage.measure import marching_cubes

    from shapeot.shapes import Shape

    img = pyvista.read(frog_path())
    vol = np.asarray(img.point_data[img.array_names[0]]).reshape(img.dimensions[::-1]).transpose(2, 1, 0)  # (x, y, z)
    mask = vol == FROG_LABELS[name]
    lab, k = ndimage.label(mask)
    if k > 1 or component:
        order = np.argsort(np.bincount(lab.ravel())[1:])[::-1]
        if component >= len(order):
            raise SystemExit(f"frog {name} has {len(order)} connected component(s); no component {component}")
        mask = lab == (order[component] + 1)
    idx = np.argwhere(mask)
    lo, hi = np.maximum(idx.min(0) - 3, 0), np.minimum(idx.max(0) + 4, mask.shape)
    crop = ndimage.gaussian_filter(mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.float32), 1.0)
    spacing = np.asarray(img.spacing, dtype=np.float64)
    verts, faces, _, _ = marching_cubes(crop, 0.5, spacing=tuple(spacing))
    verts = verts + np.asarray(img.origin) + lo * spacing
    label = f"frog {name}" + (f" #{component + 1}" if component else "")
    shape = Shape(verts.astype(np.float64), faces.astype(np.int64), name=label, units="mm")
    return shape.decimate(n) if shape.n_points > 1.02 * n else shape


def variants(scale_widths: float = 2.0) -> dict:
    """name -> (preset, overrides)."""
    from shapeot.registration.config import RegistrationConfig

    base = RegistrationConfig.from_preset("nonrigid")
    wide = tuple(dataclasses.replace(lv, width=lv.width * scale_widths) for lv in base.levels)
    lddmm = RegistrationConfig.from_preset("diffeomorphic")

    def with_normals(levels, alpha):
        return tuple(dataclasses.replace(lv, normals=alpha) for lv in levels)

    normals = with_normals(base.levels, 0.1)
    return {
        "affine": ("affine", {}),
        "nonrigid": ("nonrigid", {}),
        "nonrigid positions only": ("nonrigid", {"levels": with_normals(base.levels, 0.0)}),
        "diffeomorphic": ("diffeomorphic", {}),
        "nonrigid reach=0.05": ("nonrigid", {"reach": 0.05}),
        "nonrigid reach=0.1": ("nonrigid", {"reach": 0.1}),
        "nonrigid reach=0.2": ("nonrigid", {"reach": 0.2}),
        f"nonrigid widths x{scale_widths:g}": ("nonrigid", {"levels": wide}),
        "nonrigid scaling=0.8": ("nonrigid", {"engine": {"scaling": 0.8}}),
        "nonrigid normals=0.1": ("nonrigid", {"levels": normals}),
        "nonrigid wide+reach=0.1": ("nonrigid", {"levels": wide, "reach": 0.1}),
        "nonrigid normals=0.05": ("nonrigid", {"levels": with_normals(base.levels, 0.05)}),
        "nonrigid normals=0.2": ("nonrigid", {"levels": with_normals(base.levels, 0.2)}),
        "nonrigid normals=0.1+reach=0.2": ("nonrigid", {"levels": normals, "reach": 0.2}),
        "diffeomorphic normals=0.1": ("diffeomorphic", {"levels": with_normals(lddmm.levels, 0.1)}),
        "nonrigid normals=0.4": ("nonrigid", {"levels": with_normals(base.levels, 0.4)}),
        # backend "torch" lets the multiscale engine run in 6-D (auto keeps it to D <= 3)
        "nonrigid normals=0.2 multiscale": ("nonrigid", {"levels": with_normals(base.levels, 0.2),
                                                         "engine": {"backend": "torch"}}),
        "nonrigid normals=0.4 multiscale": ("nonrigid", {"levels": with_normals(base.levels, 0.4),
                                                         "engine": {"backend": "torch"}}),
        "nonrigid normals=0.2+reach=0.2": ("nonrigid", {"levels": with_normals(base.levels, 0.2), "reach": 0.2}),
        "diffeomorphic normals=0.2": ("diffeomorphic", {"levels": with_normals(lddmm.levels, 0.2)}),
        "diffeomorphic normals=0.2 no finetune": ("diffeomorphic", {"levels": with_normals(lddmm.levels, 0.2),
                                                                    "finetune": None}),
        "diffeomorphic normals=0.2 + spline flow": (
            "diffeomorphic", {"levels": with_normals(lddmm.levels, 0.2) + (
                dataclasses.replace(base.levels[-1], model="spline"),), "finetune": None}),
        "diffeomorphic 2 lddmm + 2 spline levels": (
            "diffeomorphic", {"levels": lddmm.levels[:2] + tuple(dataclasses.replace(lv, model="spline")
                                                                 for lv in base.levels[1:])}),
        "diffeomorphic normals=0.2 fit x3": ("diffeomorphic", {"levels": with_normals(lddmm.levels, 0.2),
                                                                "finetune": None, "lddmm": {"fit_iterations": 30}}),
        "diffeomorphic normals=0.2+reach=0.2": ("diffeomorphic", {"levels": with_normals(lddmm.levels, 0.2),
                                                                  "reach": 0.2}),
    }


def seeded_pair(source, amplitude: float = 0.12, width: float = 0.5):
    """(pair, diameter mm): ``source`` under the module docstring's seeded warp, amplitude and
    width as fractions of its diameter, target resampled."""
    from shapeot.shapes.geometry import diameter
    from shapeot.shapes.synthetic import warp_pair

    d = diameter(np.asarray(source.points))
    return warp_pair(source, seed=1, amplitude=amplitude * d, angle_deg=20, translation_mm=15, width=width * d,
                     resample=True), d


def mean_edge(points: np.ndarray, faces: np.ndarray) -> float:
    """Mean length of a mesh's edges (each counted once), units of the points."""
    p, f = np.asarray(points), np.asarray(faces)
    edges = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1), axis=0)
    return float(np.linalg.norm(p[edges[:, 0]] - p[edges[:, 1]], axis=1).mean())


def _stats(values) -> tuple:
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    if not v:
        return None, None, None
    return min(v), float(np.median(v)), max(v)


def score(source, target, truth, reg, seconds) -> dict:
    from shapeot.metrics import chamfer
    from shapeot.shapes import Shape
    from shapeot.shapes.geometry import vertex_normals

    faces = np.asarray(source.faces)
    warped = np.asarray(reg.warped.points)
    warped_mesh = Shape(warped, faces, units=source.units)  # a registered cloud, scored as the mesh
    e = warped - truth
    n = vertex_normals(truth, faces)  # the target surface (before resampling) at the truth points
    en = (e * n).sum(1)
    mag2 = (e ** 2).sum(1)
    tan = np.sqrt(np.maximum(mag2 - en ** 2, 0))
    err = np.sqrt(mag2)
    edge = mean_edge(source.points, faces)
    after = reg.metrics.get("after", {})
    nr = [h.marginal_error for h in reg.history if h.stage == "nonrigid" and h.marginal_error is not None]
    pre = [h.marginal_error for h in reg.history if h.stage != "nonrigid" and h.marginal_error is not None]
    mn, md, mx = _stats(nr)
    pmn, pmd, pmx = _stats(pre)
    return {"err_mean": float(err.mean()), "err_p95": float(np.percentile(err, 95)), "err_max": float(err.max()),
            "err_tan_mean": float(tan.mean()), "err_normal_mean": float(np.abs(en).mean()),
            "tan_share": float((tan ** 2).sum() / max(mag2.sum(), 1e-300)), "edge": edge,
            "err_over_edge": float(err.mean() / edge),
            "chamfer_s": float(chamfer(warped_mesh, target, surface=True)),
            "jac_min": after.get("jacobian_min"), "jac_max": after.get("jacobian_max"), "folded": after.get("folded"),
            "time_s": seconds, "marg_min": mn, "marg_med": md, "marg_max": mx, "marg_rounds": len(nr),
            "pre_marg_med": pmd, "pre_marg_max": pmx,
            **{f"t_{k}": v for k, v in reg.timings.items() if k != "total"}}


COLS = ["case", "variant", "err_mean", "err_p95", "tan_share", "err_over_edge", "chamfer_s", "jac_min", "folded",
        "time_s", "marg_min", "marg_med", "marg_max"]


def main(argv=None) -> None:
    import torch

    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--organs", nargs="+", default=["liver", "kidney"],
                   choices=sorted(FROG_LABELS) + ["brain"] + sorted(MNI_LABELS),
                   help="frog organs; 'brain': the 10k sample left pial surface under register.py's warp "
                        "(10 mm, 20 degrees, 10 mm, seed 0, target resampled), to check that a variant "
                        "keeps the brains' accuracy; 'gray_matter', 'white_matter': the surfaces of "
                        "sample_meshes/mni152_tissue_labels_2mm.nii.gz's labels (shapeot.load(..., label=))")
    p.add_argument("--n", type=int, default=3000, help="vertices per organ surface (decimated)")
    p.add_argument("--amplitude", type=float, default=0.12, help="warp amplitude, fraction of the diameter")
    p.add_argument("--width", type=float, default=0.5, help="warp kernel width, fraction of the diameter")
    p.add_argument("--variants", nargs="+", default=None, help="subset of the variant names (default: all)")
    p.add_argument("--tag", default="")
    p.add_argument("--clouds", action="store_true",
                   help="register the vertices alone (point clouds: no faces, normals estimated)")
    args = p.parse_args(argv)

    from shapeot.registration import register
    from shapeot.registration.config import RegistrationConfig
    from shapeot.shapes.geometry import diameter
    from shapeot.shapes.synthetic import warp_pair

    all_variants = variants()
    chosen = args.variants or list(all_variants)
    rows = []
    for name in args.organs:
        if name == "brain":
            from shapeot.samples import sample_path
            from shapeot.shapes import load

            source = load(sample_path("fsaverage5_lh_pial.gii"))
            d = diameter(np.asarray(source.points))
            pair = warp_pair(source, seed=0, resample=True)
        elif name in MNI_LABELS:
            from shapeot.shapes import load

            source = load(MNI_PATH, label=MNI_LABELS[name])
            source = source.decimate(args.n) if source.n_points > 1.02 * args.n else source
            pair, d = seeded_pair(source, args.amplitude, args.width)
        else:
            source = organ(name, args.n)
            pair, d = seeded_pair(source, args.amplitude, args.width)
        mesh_source, mesh_target = source, pair.target  # scored on the meshes either way
        if args.clouds:
            from shapeot.shapes import Shape

            source = Shape(np.asarray(source.points), units=source.units, name=source.name)
            pair = pair._replace(target=Shape(np.asarray(pair.target.points), units=pair.target.units,
                                              name=pair.target.name))
        case = f"{name} ({source.n_points} v, {d:.0f} mm{', cloud' if args.clouds else ''})"
        print(f"{case}: target {pair.target.n_points} v", flush=True)
        for v in chosen:
            preset, over = all_variants[v]
            cfg = RegistrationConfig.from_preset(preset, **over)
            t = time.perf_counter()
            try:
                reg = register(source, pair.target, cfg)
                row = {"case": case, "organ": name, "variant": v, "n": source.n_points, "diameter_mm": d,
                       **score(mesh_source, mesh_target, pair.truth, reg, time.perf_counter() - t)}
            except Exception as exc:  # noqa: BLE001 - a failing variant still gets a row
                row = {"case": case, "organ": name, "variant": v, "failed": f"{type(exc).__name__}: {exc}"}
            rows.append(row)
            print(table([row], COLS + ["failed"]), flush=True)
    # Issue 16's goals, per case.
    for name in args.organs:
        r = {x["variant"]: x for x in rows if x["organ"] == name and "err_mean" in x}
        if "affine" not in r:
            continue
        for x in r.values():
            x["beats_affine"] = bool(x["err_mean"] < r["affine"]["err_mean"] and x["err_p95"] <= r["affine"]["err_p95"])
            x["meets_edge_goal"] = bool(x["err_over_edge"] <= 0.35)
    print()
    print(table(rows, COLS + ["beats_affine", "meets_edge_goal", "failed"]))
    info = machine()
    info.update(argv=sys.argv[1:] if argv is None else list(argv), n=args.n, amplitude=args.amplitude,
                width=args.width)
    print(f"wrote {write(f'smooth-{args.tag}' if args.tag else 'smooth', info, rows)}")


if __name__ == "__main__":
    main()
