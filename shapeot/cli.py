"""The ``shapeot`` command line. It holds no science: it calls the same public functions as the API.

    shapeot match SOURCE TARGET -o corr.csv [--blur MM] [--reach MM] [--scaling S] [--backend B]
    shapeot register SOURCE TARGET -o warped.vtp [--preset P] [--landmarks SRC.csv TGT.csv]
                     [--device cpu|cuda] [--json summary.json]
    shapeot template FOLDER -o OUTDIR [--label N] [--preset P] [--iterations K]
                     [--scheduler local|ADDRESS]
    shapeot demo [-o OUTDIR]          the README's main job: OT match of the two sample brains
    shapeot backends                  which OT backends work on this machine, and why not

Errors print one line starting with "shapeot: error:" and exit with status 2; nothing partial
is left behind (outputs are written to a temporary file and renamed).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shapeot.errors import Cancelled

SAMPLES = Path(__file__).resolve().parent.parent / "sample_meshes"


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _check_output(out: Path, inputs: list[Path], overwrite: bool) -> None:
    for p in inputs:
        if out.resolve() == p.resolve():
            raise CliError(f"output {out} is one of the inputs; choose another path (inputs are never overwritten)")
    if out.exists() and not overwrite:
        raise CliError(f"output {out} exists; pass --overwrite to replace it")


def _cmd_match(args) -> int:
    from shapeot.matching import match
    from shapeot.shapes import load

    src, tgt, out = Path(args.source), Path(args.target), Path(args.output)
    _check_output(out, [src, tgt], args.overwrite)
    source, target = load(src), load(tgt)
    t = time.perf_counter()
    corr = match(source, target, blur=args.blur, reach=args.reach, scaling=args.scaling, backend=args.backend)
    corr.to_csv(out)
    res = corr.result
    print(f"S_eps = {res.value.item():.6g} {source.units}^2  blur = {res.blur:.4g} {source.units}  "
          f"backend = {res.backend}/{res.mode}  iterations = {res.n_iterations}  "
          f"marginal error = {res.marginal_error:.2e}  time = {time.perf_counter() - t:.2f} s")
    print(f"wrote {len(corr.mass)} correspondences to {out}")
    return 0


_MESH_SUFFIXES = (".gii.gz", ".vtk", ".vtp", ".stl", ".ply", ".obj", ".off", ".gii")


def _stem(path: Path) -> str:
    """The file name without its mesh extension (".gii.gz" counts as one)."""
    name = path.name
    for suffix in _MESH_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_landmarks(path: str | Path):
    """(L, 3) float64 landmarks (mm) from a CSV file.

    Lines starting with "#" and lines whose coordinates are not numbers (a header) are skipped.
    Slicer markups (.fcsv: id, x, y, z, ...) use columns 2-4; other files their last three
    columns (x, y, z; an optional label or index may come first).
    """
    import csv

    import numpy as np

    path = Path(path)
    rows = []
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if not row or row[0].lstrip().startswith("#"):
                continue
            cells = row[1:4] if path.suffix.lower() == ".fcsv" else row[-3:]
            try:
                rows.append([float(c) for c in cells])
            except ValueError:
                continue  # a header
    if not rows or any(len(r) != 3 for r in rows):
        raise CliError(f"{path}: no landmarks found (expected rows of x, y, z in mm)")
    return np.asarray(rows, dtype=np.float64)


class _Bar:
    """A tqdm progress bar fed by the library's progress(fraction, message) callback."""

    def __init__(self):
        from tqdm import tqdm

        self._bar = tqdm(total=1000, unit="", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}",
                         file=sys.stderr, leave=False)

    def __call__(self, fraction: float, message: str) -> bool:
        n = int(round(1000 * fraction))
        if n > self._bar.n:
            self._bar.update(n - self._bar.n)
        self._bar.set_postfix_str(message, refresh=False)
        return True

    def close(self):
        self._bar.close()


def _metrics_table(metrics: dict, units: str) -> str:
    keys = [("chamfer", "Chamfer, point-to-point"), ("chamfer_surface", "Chamfer, point-to-surface"),
            ("hausdorff_surface", "Hausdorff, point-to-surface"), ("hd95_surface", "HD95, point-to-surface"),
            ("tre_mean", "landmark TRE, mean"), ("tre_max", "landmark TRE, max")]
    before, after = metrics.get("before", {}), metrics.get("after", {})
    lines = [f"{'metric':<30} {'before':>10} {'after':>10}  ({units})"]
    for k, label in keys:
        if k in before or k in after:
            b, a = before.get(k), after.get(k)
            lines.append(f"{label:<30} {'-' if b is None else f'{b:.3f}':>10} {'-' if a is None else f'{a:.3f}':>10}")
    for k, label in (("area_ratio_min", "area ratio, min"), ("area_ratio_max", "area ratio, max"),
                     ("jacobian_min", "Jacobian det, min"), ("jacobian_max", "Jacobian det, max"),
                     ("folded", "folded triangles")):
        if k in after:
            lines.append(f"{label:<30} {'':>10} {after[k]:>10.4g}")
    return "\n".join(lines)


def _write_registration(reg, out: Path, json_path: Path | None) -> list[Path]:
    """Write every output into a hidden temporary folder next to ``out``, then move them into
    place: either all files appear or none does."""
    import json
    import os
    import shutil
    import tempfile

    import numpy as np

    stem = _stem(out)
    finals = {
        "mesh": out,
        "displacement": out.with_name(f"{stem}_displacement.csv"),
        "correspondences": out.with_name(f"{stem}_correspondences.csv"),
        "prealign": out.with_name(f"{stem}_prealign.txt"),
    }
    if json_path is not None:
        finals["json"] = json_path
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".shapeot-register-"))
    try:
        staged = {k: tmp / f"{k}-{p.name}" for k, p in finals.items()}
        staged["mesh"] = tmp / out.name  # the mesh writer picks the format from the name
        reg.warped.save(staged["mesh"])
        d = reg.displacement
        np.savetxt(staged["displacement"], np.column_stack([np.arange(len(d)), d]), delimiter=",",
                   fmt=["%d", "%.6f", "%.6f", "%.6f"], header="source_index,dx,dy,dz", comments="")
        reg.correspondences.to_csv(staged["correspondences"])
        np.savetxt(staged["prealign"], reg.prealign, fmt="%.10g",
                   header="4x4 pre-alignment (source -> target, mm), acting on column vectors [x y z 1]")
        if json_path is not None:
            staged["json"].write_text(json.dumps(reg.summary(), indent=1))
        for k, p in finals.items():
            p.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged[k], p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return list(finals.values())


def _cmd_register(args) -> int:
    from shapeot.registration import RegistrationConfig, register
    from shapeot.shapes import load
    from shapeot.shapes.io import detect_format

    src, tgt, out = Path(args.source), Path(args.target), Path(args.output)
    json_path = Path(args.json) if args.json else None
    inputs = [src, tgt] + [Path(p) for p in (args.landmarks or [])]
    detect_format(out, for_writing=True)  # an unknown extension fails now, not after the work
    stem = _stem(out)
    outputs = [out, *(out.with_name(f"{stem}_{k}") for k in ("displacement.csv", "correspondences.csv",
                                                              "prealign.txt"))]
    for o in outputs + ([json_path] if json_path else []):
        _check_output(o, inputs, args.overwrite)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CliError("--device cuda was asked for but no CUDA device is available here")
    config = RegistrationConfig.from_preset(args.preset, device=args.device, backend=args.backend)
    source, target = load(src), load(tgt)
    landmarks = None
    if args.landmarks:
        landmarks = (read_landmarks(args.landmarks[0]), read_landmarks(args.landmarks[1]))
        if landmarks[0].shape != landmarks[1].shape:
            raise CliError(f"{len(landmarks[0])} source landmarks but {len(landmarks[1])} target landmarks")
    print(f"source: {source.name}: {source.n_points} vertices; target: {target.name}: {target.n_points} "
          f"vertices; preset {args.preset}")
    bar = _Bar()
    try:
        reg = register(source, target, config, progress=bar, landmarks=landmarks)
    finally:
        bar.close()
    written = _write_registration(reg, out, json_path)
    print(_metrics_table(reg.metrics, source.units))
    print(f"time {reg.timings['total']:.1f} s (pre-alignment {reg.timings['prealign']:.1f} s, non-rigid "
          f"{reg.timings['nonrigid']:.1f} s, fine-tuning {reg.timings['finetune']:.1f} s)")
    for p in written:
        print(f"wrote {p}")
    return 0


def _cmd_demo(args) -> int:
    """The README's main job: OT match, then registration, of the left pial surface to the mirrored right one."""
    import numpy as np

    from shapeot.matching import match
    from shapeot.shapes import Shape, load

    lh, rh = SAMPLES / "fsaverage5_lh_pial.gii", SAMPLES / "fsaverage5_rh_pial.gii"
    for p in (lh, rh):
        if not p.exists():
            raise CliError(f"sample file {p} is missing; run from a full checkout of shapeot")
    source = load(lh)
    right = load(rh)
    # Mirror the right hemisphere across the mid-sagittal plane (x -> -x in RAS), flipping the
    # triangles' orientation so that normals still point outwards.
    mirrored = Shape(points=right.points * np.array([-1.0, 1.0, 1.0]), faces=right.faces[:, ::-1].copy(),
                     name=f"{right.name} (mirrored)", units=right.units)
    out = Path(args.output)
    print(f"source: {source.name}: {len(source.points)} vertices; target: {mirrored.name}: "
          f"{len(mirrored.points)} vertices; units {source.units}")
    t = time.perf_counter()
    corr = match(source, mirrored, blur=args.blur, scaling=args.scaling, backend=args.backend)
    elapsed = time.perf_counter() - t
    res = corr.result
    norms = np.linalg.norm(corr.displacement, axis=1)
    csv_path = corr.to_csv(out / "lh_to_mirrored_rh_correspondences.csv")
    print(f"Sinkhorn divergence S_eps = {res.value.item():.4f} mm^2 "
          f"(blur {res.blur:.2f} mm, scaling {args.scaling}, {res.n_iterations} iterations)")
    print(f"backend {res.backend}/{res.mode}, {elapsed:.2f} s, plan marginal error {res.marginal_error:.2e}")
    print(f"OT displacement to the mirrored right hemisphere: mean {norms.mean():.2f} mm, "
          f"median {np.median(norms):.2f} mm, 95th percentile {np.percentile(norms, 95):.2f} mm")
    print(f"wrote {csv_path}")
    if args.no_register:
        return 0

    from shapeot.registration import RegistrationConfig, register

    print("registering (preset nonrigid): pre-alignment, smooth warp, fine-tuning")
    bar = _Bar()
    try:
        reg = register(source, mirrored, RegistrationConfig.from_preset("nonrigid", backend=args.backend), progress=bar)
    finally:
        bar.close()
    out.mkdir(parents=True, exist_ok=True)
    written = _write_registration(reg, out / "lh_to_mirrored_rh_warped.vtp", out / "lh_to_mirrored_rh_summary.json")
    print(_metrics_table(reg.metrics, source.units))
    print(f"time {reg.timings['total']:.1f} s")
    for p in written:
        print(f"wrote {p}")
    return 0


def _cmd_template(args) -> int:
    """Population template of a folder: template mesh, corresponded subjects, modes, summary, plot."""
    import importlib.util

    import numpy as np

    from shapeot.templates import TemplateConfig, load_folder, template
    from shapeot.templates.write import write_template

    folder, out = Path(args.folder), Path(args.output)
    if not folder.is_dir():
        raise CliError(f"{folder}: no such folder (give the folder that holds the subjects' meshes or scans)")
    if out.resolve() == folder.resolve() or folder.resolve().is_relative_to(out.resolve()):
        raise CliError(f"output {out} would replace the input folder {folder}; choose another output folder")
    if out.exists() and not args.overwrite:
        raise CliError(f"output {out} exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise CliError(f"output {out} is a file; give a folder name")
    config = TemplateConfig(preset=args.preset, iterations=args.iterations, tolerance_mm=args.tolerance,
                            n_modes=args.modes)
    plot = importlib.util.find_spec("matplotlib") is not None
    if not plot:  # said now, not after the work
        print("note: matplotlib is not installed, so convergence.png will not be written (pip install matplotlib)")
    options = {"n_points": args.points} if args.points else {}
    loaded = load_folder(folder, pattern=args.pattern, label=args.label, **options)
    print(loaded.report())
    where = "in-process" if args.scheduler is None else f"Dask scheduler {args.scheduler}"
    print(f"template of {len(loaded)} subjects ({sum(s.n_points for s in loaded) // len(loaded)} vertices on "
          f"average), preset {args.preset}, at most {args.iterations} iterations, {where}")
    bar = _Bar()
    try:
        tpl = template(loaded, config, executor=args.scheduler, progress=bar)
    except Exception as exc:  # noqa: BLE001 - a cluster failure becomes one line, like any user error
        if type(exc).__module__.split(".")[0] in ("distributed", "dask"):
            raise CliError(f"the Dask cluster failed: {type(exc).__name__}: {exc}") from exc
        raise
    finally:
        bar.close()
    written = write_template(tpl, out, overwrite=args.overwrite, fmt=args.format, plot=plot)
    lines = [f"{'subject':<28} {'weight':>7} {'deform RMS':>11} {'surface':>8} {'fit':>6}  (mm)"]
    for s, name in enumerate(tpl.names):
        d = {k: v[s] for k, v in tpl.distances.items()}
        lines.append(f"{name[:28]:<28} {tpl.weights[s]:>7.3f} {d['deformation_rms']:>11.3f} "
                     f"{d.get('surface', float('nan')):>8.3f} {d.get('fit', float('nan')):>6.3f}"
                     + ("  (medoid)" if s == tpl.medoid else ""))
    print("\n".join(lines))
    its = [h for h in tpl.history if h["stage"] == "template"]
    print(f"{len(its)} iteration(s), last move {its[-1]['move_normal_rms_mm']:.3f} mm RMS along the normals "
          f"({'converged' if tpl.converged else 'not converged'}, tolerance {args.tolerance} mm)")
    sds = ", ".join(f"{np.sqrt(v):.2f} mm ({100 * r:.0f} %)" for v, r in
                    zip(tpl.modes.variances, tpl.modes.explained_variance_ratio))
    print(f"modes (SD, share of variance): {sds or 'none'}")
    print(f"time {tpl.timings['total']:.1f} s (Procrustes {tpl.timings['procrustes']:.1f} s, iterations "
          f"{tpl.timings['iterations']:.1f} s, statistics {tpl.timings['statistics']:.1f} s) on {tpl.executor}")
    print(f"wrote {len(written)} files to {out}")
    return 0


def _cmd_backends(args) -> int:
    from shapeot.ot.backends import available_backends, keops_verdict

    print("available:", ", ".join(available_backends(args.device)))
    v = keops_verdict(args.device)
    print(f"keops on {args.device}: {'ok' if v.ok else 'not usable'} ({v.reason})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shapeot", description="3D shape analysis with optimal transport.")
    sub = p.add_subparsers(dest="command", required=True)

    def ot_options(q, scaling):
        q.add_argument("--blur", type=float, default=None, help="blur in mm (default: 1%% of the diameter)")
        q.add_argument("--scaling", type=float, default=scaling, help="epsilon-scaling ratio in (0, 1)")
        q.add_argument("--backend", default="auto", choices=["auto", "torch", "keops"])

    m = sub.add_parser("match", help="write OT correspondences between two meshes (CSV)")
    m.add_argument("source")
    m.add_argument("target")
    m.add_argument("-o", "--output", required=True, help="CSV file to write")
    m.add_argument("--reach", type=float, default=None, help="reach in mm for unbalanced OT (default: balanced)")
    m.add_argument("--overwrite", action="store_true")
    ot_options(m, 0.8)
    m.set_defaults(func=_cmd_match)

    r = sub.add_parser("register", help="register SOURCE onto TARGET: warped mesh, displacement, correspondences")
    r.add_argument("source")
    r.add_argument("target")
    r.add_argument("-o", "--output", required=True,
                   help="warped mesh to write (format by extension: .vtp, .vtk, .ply, .obj, .stl, .gii, ...); "
                        "STEM_displacement.csv, STEM_correspondences.csv and STEM_prealign.txt go beside it")
    r.add_argument("--preset", default="nonrigid", choices=["rigid", "affine", "nonrigid", "diffeomorphic"])
    r.add_argument("--landmarks", nargs=2, metavar=("SRC.csv", "TGT.csv"),
                   help="corresponding landmarks (x, y, z in mm per row), carried through and scored")
    r.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default cpu)")
    r.add_argument("--backend", default="auto", choices=["auto", "torch", "keops"])
    r.add_argument("--json", default=None, help="also write a JSON summary (metrics, timings, configuration)")
    r.add_argument("--overwrite", action="store_true")
    r.set_defaults(func=_cmd_register)

    t = sub.add_parser("template", help="build a population template from a folder of meshes or label maps")
    t.add_argument("folder", help="folder of meshes or label maps (one subject per file; subfolders ignored)")
    t.add_argument("-o", "--output", required=True,
                   help="folder to create: template mesh, subjects/ (corresponded meshes, displacements), "
                        "modes/ (mean, modes, variances), summary.json, convergence.png")
    t.add_argument("--label", default=None, help="label value (or segment name) to extract from every scan")
    t.add_argument("--pattern", default=None, help="shell pattern of the files to use, e.g. 'subject_*.gii'")
    t.add_argument("--points", type=int, default=None, help="label maps: decimate each surface to this many vertices")
    t.add_argument("--preset", default="nonrigid", choices=["affine", "nonrigid", "diffeomorphic"],
                   help="registration of the template to each subject (default nonrigid)")
    t.add_argument("--iterations", type=int, default=4, help="most template updates (default 4)")
    t.add_argument("--tolerance", type=float, default=0.2,
                   help="stop when the template's surface moves less than this, mm RMS along the normals "
                        "(default 0.2)")
    t.add_argument("--modes", type=int, default=5, help="principal modes to write (default 5)")
    t.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                   help="run the subjects on Dask: 'local' starts a LocalCluster with one worker per core; "
                        "tcp://host:port uses a running scheduler (default: in this process)")
    t.add_argument("--format", default="vtp", choices=["vtp", "vtk", "ply", "gii"], help="mesh format (default vtp)")
    t.add_argument("--overwrite", action="store_true", help="replace OUTDIR if it exists")
    t.set_defaults(func=_cmd_template)

    d = sub.add_parser("demo", help="OT match of the two sample brain hemispheres")
    d.add_argument("-o", "--output", default="out/demo", help="folder for the results (default out/demo)")
    d.add_argument("--no-register", action="store_true", help="stop after the OT match")
    ot_options(d, 0.8)
    d.set_defaults(func=_cmd_demo)

    b = sub.add_parser("backends", help="list the OT backends that work here")
    b.add_argument("--device", default="cpu")
    b.set_defaults(func=_cmd_backends)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ValueError, OSError, ImportError) as exc:
        print(f"shapeot: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("shapeot: cancelled; nothing was written", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("shapeot: interrupted; nothing was written", file=sys.stderr)
        return 130
