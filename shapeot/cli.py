"""The ``shapeot`` command line. It holds no science: it calls the same public functions as the API.

    shapeot match SOURCE TARGET -o corr.csv [--blur MM] [--reach MM] [--scaling S] [--backend B]
                  [--label N] [--units U] [--to-units U] [--overwrite]
    shapeot register SOURCE TARGET -o warped.vtp [--preset P] [--landmarks SRC.csv TGT.csv]
                     [--device cpu|cuda] [--json summary.json] [--label N] [--units U] [--to-units U]
    shapeot template FOLDER -o OUTDIR [--label N] [--preset P] [--iterations K]
                     [--scheduler local|ADDRESS] [--units U] [--to-units U]
    shapeot demo [-o OUTDIR] [--overwrite]   the README's main job on the two sample brains
    shapeot backends [--device D]     which OT backends work on this machine, and why not

Errors print one line starting with "shapeot: error:" and exit with status 2; warnings (units
inferred from a shape's size, float32 precision) print one line starting with "shapeot: warning:".
Every output path is checked before the work starts; outputs are staged and committed together,
each created exclusively unless --overwrite (:mod:`shapeot.core.outputs`): nothing partial is
left behind and no existing file is replaced without --overwrite. ``--units`` says what the input
files' coordinates are in (where the files do not say); ``--to-units`` converts every input to
one unit (mixed units are refused).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

from shapeot.core.errors import Cancelled
from shapeot.shapes.landmarks import read_landmarks  # noqa: F401 - part of the CLI's API

UNIT_CHOICES = ("mm", "cm", "m", "um")


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _load_input(path: Path, args, label=None):
    """Read an input with the command's --label / --units / --to-units."""
    from shapeot.shapes import load

    shape = load(path, label, units=getattr(args, "units", None))
    if getattr(args, "to_units", None):
        shape = shape.to_units(args.to_units)
    return shape


def _check_device(name: str) -> str:
    """The --device value, checked now by the engine's one device rule (a bad name or a missing
    GPU is a user error, not a traceback); "auto" becomes the device it picks."""
    from shapeot.ot.device import resolve_device

    try:
        return str(resolve_device(name))
    except ValueError as exc:
        raise CliError(f"--device: {exc}") from None


def _same_units(source, target) -> None:
    if source.units != target.units:
        raise CliError(f"source is in {source.units} and target in {target.units}; pass --to-units {target.units} "
                       "to convert them, or --units if a file's units were inferred wrongly")


def _cmd_match(args) -> int:
    from shapeot.core.outputs import OutputSet, write_csv_rows
    from shapeot.matching import CSV_HEADER, check_csv_path, match

    src, tgt, out = Path(args.source), Path(args.target), Path(args.output)
    check_csv_path(out)
    with OutputSet(overwrite=args.overwrite, inputs=[src, tgt]) as outputs:
        outputs.add(out)  # checked now, before any work
        source, target = _load_input(src, args, args.label), _load_input(tgt, args, args.label)
        _same_units(source, target)
        t = time.perf_counter()
        corr = match(source, target, blur=args.blur, reach=args.reach, scaling=args.scaling, backend=args.backend)
        elapsed = time.perf_counter() - t
        write_csv_rows(outputs.stage(out), CSV_HEADER, corr.rows())
        outputs.commit()
    res = corr.result
    print(f"S_eps = {res.value.item():.6g} {source.units}^2  blur = {res.blur:.4g} {source.units}  "
          f"backend = {res.backend}/{res.mode}  iterations = {res.n_iterations}  "
          f"marginal error = {res.marginal_error:.2e}  time = {elapsed:.2f} s")
    print(f"wrote {len(corr.mass)} correspondences to {out}")
    return 0


_QUIET = False  # --quiet: no progress at all


class _Bar:
    """Progress of the library's progress(fraction, message) callback on stderr: a tqdm bar on a
    terminal; plain time-stamped log lines (a new message or every 10 %) when stderr is a file or
    a pipe, where a bar's carriage returns would be noise; nothing with --quiet."""

    def __init__(self):
        self._bar = None
        self._last = ("", -1.0)
        self._t0 = time.perf_counter()
        if _QUIET or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        self._bar = tqdm(total=1000, unit="", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}",
                         file=sys.stderr, leave=False)

    def __call__(self, fraction: float, message: str) -> bool:
        if self._bar is not None:
            n = int(round(1000 * fraction))
            if n > self._bar.n:
                self._bar.update(n - self._bar.n)
            self._bar.set_postfix_str(message, refresh=False)
        elif not _QUIET:
            head = message.split(":")[0]
            if head != self._last[0] or fraction >= self._last[1] + 0.1:
                self._last = (head, fraction)
                print(f"[{time.perf_counter() - self._t0:7.1f} s] {100 * fraction:3.0f} % {message}", file=sys.stderr,
                      flush=True)
        return True

    def close(self):
        if self._bar is not None:
            self._bar.close()


def _metrics_table(metrics: dict, units: str) -> str:
    """The brief rows of :data:`shapeot.metrics.METRICS`, and a note when the warp turned over."""
    from shapeot.metrics.table import metric_rows
    from shapeot.registration.report import warp_advice

    rows = metric_rows(metrics, units=units, brief=True)
    width = max([len(label) for _, label, _, _ in rows] + [30])
    lines = [f"{'metric':<{width}} {'before':>10} {'after':>10}"]
    lines += [f"{label:<{width}} {before:>10} {after:>10}" for _, label, before, after in rows]
    advice = warp_advice(metrics.get("after", {}))
    if advice:
        lines.append(f"note: {advice}")
    return "\n".join(lines)


def _cmd_register(args) -> int:
    from shapeot.registration import register
    from shapeot.registration.write import check_registration_outputs, write_registration
    from shapeot.shapes.units import unit_factor

    src, tgt, out = Path(args.source), Path(args.target), Path(args.output)
    json_path = Path(args.json) if args.json else None
    inputs = [src, tgt] + [Path(p) for p in (args.landmarks or [])]
    # Every output path, extension and folder is checked now, not after the work.
    outputs = check_registration_outputs(out, summary=json_path, overwrite=args.overwrite, inputs=inputs)
    from shapeot.registration.write import output_stem

    stem = output_stem(out)
    extra = {}  # role -> output path, declared (checked) now, written with the rest at the end
    if args.save_transform:
        if not args.save_transform.endswith(".npz"):
            raise CliError(f"--save-transform {args.save_transform}: shapeot transforms are .npz files")
        extra["transform"] = outputs.add(args.save_transform)
    if args.itk_transform:
        if not args.itk_transform.lower().endswith((".h5", ".hdf5", ".nii.gz", ".nii", ".nrrd", ".mha")):
            raise CliError(f"--itk-transform {args.itk_transform}: give a .h5 (ITK transform) or .nii.gz file")
        extra["itk"] = outputs.add(args.itk_transform)
    if args.landmarks:
        extra["landmarks"] = outputs.add(out.with_name(f"{stem}_landmarks{Path(args.landmarks[0]).suffix or '.csv'}"))
    config = _registration_config(args)
    _check_device(config.engine.device)
    if args.print_config:
        print(config.to_toml())
    from shapeot.shapes import load

    raw = [load(p, args.label, units=args.units, surf=args.surf) for p in (src, tgt)]
    source, target = (s.to_units(args.to_units) if args.to_units else s for s in raw)
    _same_units(source, target)
    landmarks = None
    if args.landmarks:
        marks = [read_landmarks(p) for p in args.landmarks]
        if args.to_units:  # landmarks are in their shapes' units as read: convert them alike
            marks = [m * unit_factor(s.units, args.to_units) for m, s in zip(marks, raw)]
        if marks[0].shape != marks[1].shape:
            raise CliError(f"{len(marks[0])} source landmarks but {len(marks[1])} target landmarks")
        landmarks = (marks[0], marks[1])
    overlays = []
    if args.overlay:  # read (and checked against the source) before the work
        from shapeot.shapes.freesurfer import is_subject_dir, subject_file
        from shapeot.shapes.overlays import read_overlay

        for name in args.overlay:
            path = subject_file(src, name) if is_subject_dir(src) and not Path(name).exists() else Path(name)
            ov = read_overlay(path, source)
            overlays.append((ov, outputs.add(out.with_name(f"{stem}_{Path(path).name}"))))
    print(f"source: {source.name}: {source.n_points} vertices; target: {target.name}: {target.n_points} "
          f"vertices; units {source.units}; preset {config.preset}")
    bar = _Bar()
    try:
        reg = register(source, target, config, progress=bar, landmarks=landmarks)
    finally:
        bar.close()
    _stage_extras(reg, source, target, args, extra, overlays, outputs)
    written = write_registration(reg, out, summary=json_path, outputs=outputs)
    print(_metrics_table(reg.metrics, source.units))
    print(_timing_line(reg.timings))
    for p in written:
        print(f"wrote {p}")
    return 0


_STAGE_NAMES = {"prealign": "pre-alignment", "nonrigid": "non-rigid", "finetune": "fine-tuning", "metrics": "metrics"}


def _timing_line(timings: dict) -> str:
    """"time T s (stage t s, ...)" for the stages that ran."""
    parts = ", ".join(f"{name} {timings[key]:.1f} s" for key, name in _STAGE_NAMES.items() if key in timings)
    return f"time {timings['total']:.1f} s ({parts})"


def _registration_config(args):
    """The preset (``--preset``, else the ``--config`` file's ``preset``, else nonrigid), the
    ``--config`` TOML file's fields over it (``RegistrationConfig.from_dict``: a partial
    [[levels]] table keeps the preset's level), then ``--device`` / ``--backend`` when given."""
    from shapeot.registration import RegistrationConfig

    fields = {}
    if args.config:
        import tomllib

        try:
            with open(args.config, "rb") as fh:
                fields = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CliError(f"--config {args.config}: {exc}") from None
    engine = {k: getattr(args, k) for k in ("device", "backend") if getattr(args, k, None) is not None}
    if engine:
        fields["engine"] = {**fields.get("engine", {}), **engine}
    preset = args.preset or fields.get("preset") or "nonrigid"
    try:
        return RegistrationConfig.from_dict(fields, preset=preset)
    except ValueError as exc:
        raise CliError(f"--config {args.config}: {exc}" if args.config else str(exc)) from None


def _version() -> str:
    import shapeot

    return shapeot.__version__


def _stage_extras(reg, source, target, args, extra: dict, overlays: list, outputs) -> None:
    """Write --save-transform, --itk-transform, the moved landmarks and the --overlay files into
    the staging area of ``outputs`` (committed with the registration's files, all or none)."""
    if "transform" in extra:
        from shapeot.deform.serialize import write_transform_file

        write_transform_file(reg.deformation, outputs.stage(extra["transform"]),
                       meta={"source": str(args.source), "target": str(args.target), "preset": reg.config.preset})
    if "itk" in extra:
        from shapeot.deform.itk import write_itk_displacement_field

        info = write_itk_displacement_field(reg.deformation, source.points, outputs.stage(extra["itk"]),
                                            direction="inverse" if args.itk_inverse else "forward")
        print(f"ITK displacement field: spacing {info.spacing_mm:.2f} mm, max error at the vertices "
              f"{info.max_error_mm:.3f} mm")
    if "landmarks" in extra:
        from shapeot.deform.serialize import apply_to_file

        apply_to_file(reg.deformation, args.landmarks[0], outputs.stage(extra["landmarks"]))
    if overlays:
        from shapeot.registration.transfer import transfer_overlay
        from shapeot.shapes.overlays import overlay_format, write_overlay_file

        for ov, path in overlays:
            write_overlay_file(transfer_overlay(ov, reg), outputs.stage(path), overlay_format(path, for_writing=True),
                               surface=target)


def _cmd_apply(args) -> int:
    from shapeot.deform.serialize import apply_transform

    transform, source, out = Path(args.transform), Path(args.input), Path(args.output)
    print(f"wrote {apply_transform(transform, source, out, overwrite=args.overwrite)}")
    return 0


def _cmd_register_many(args) -> int:
    from shapeot.registration import RegistrationConfig
    from shapeot.registration.batch import register_many

    _check_device(args.device)
    config = RegistrationConfig.from_preset(args.preset, engine={"device": args.device, "backend": args.backend})
    bar = _Bar()
    try:
        res = register_many(args.sources, args.target, config, Path(args.output), executor=args.scheduler,
                            surf=args.surf, pattern=args.pattern, mesh_format=args.format, overlays=args.overlay,
                            overwrite=args.overwrite, progress=bar)
    except Exception as exc:  # noqa: BLE001 - a cluster failure is a user-facing error, not a traceback
        if type(exc).__module__.split(".")[0] in ("distributed", "dask"):
            raise CliError(f"the Dask cluster failed: {type(exc).__name__}: {exc}") from exc
        raise
    finally:
        bar.close()
    for r in res.rows:
        print(f"{r['subject']:<28} {r['status']:<7} {r.get('seconds', 0):6.1f} s  {r['error']}")
    print(f"{len(res.ok)} registered, {len(res.failed)} failed ({res.executor}); wrote {res.summary_csv}")
    return 0 if not res.failed else 1


def _cmd_demo(args) -> int:
    """The README's main job: OT match, then registration, of the left pial surface to the mirrored right one."""
    import numpy as np

    from shapeot.core.outputs import OutputSet, write_csv_rows
    from shapeot.matching import CSV_HEADER, match
    from shapeot.registration.write import check_registration_outputs, write_registration
    from shapeot.samples import sample_path
    from shapeot.shapes import Shape, load

    try:
        lh, rh = sample_path("fsaverage5_lh_pial.gii"), sample_path("fsaverage5_rh_pial.gii")
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CliError(f"output {out} is a file; give a folder name")
    # Every output is checked before the work: an existing one needs --overwrite.
    csv_path = out / "lh_to_mirrored_rh_correspondences.csv"
    match_out = OutputSet(overwrite=args.overwrite, inputs=[lh, rh])
    match_out.add(csv_path)
    reg_out = None
    if not args.no_register:
        reg_out = check_registration_outputs(out / "lh_to_mirrored_rh_warped.vtp",
                                             summary=out / "lh_to_mirrored_rh_summary.json",
                                             overwrite=args.overwrite, inputs=[lh, rh])
    source = load(lh)
    right = load(rh)
    # Mirror the right hemisphere across the mid-sagittal plane (x -> -x in RAS), flipping the
    # triangles' orientation so that normals still point outwards.
    mirrored = Shape(points=right.points * np.array([-1.0, 1.0, 1.0]), faces=right.faces[:, ::-1].copy(),
                     name=f"{right.name} (mirrored)", units=right.units)
    print(f"source: {source.name}: {len(source.points)} vertices; target: {mirrored.name}: "
          f"{len(mirrored.points)} vertices; units {source.units}")
    t = time.perf_counter()
    corr = match(source, mirrored, blur=args.blur, scaling=args.scaling, backend=args.backend)
    elapsed = time.perf_counter() - t
    res = corr.result
    norms = np.linalg.norm(corr.displacement, axis=1)
    with match_out:
        write_csv_rows(match_out.stage(csv_path), CSV_HEADER, corr.rows())
        match_out.commit()
    print(f"Sinkhorn divergence S_eps = {res.value.item():.4f} mm^2 "
          f"(blur {res.blur:.2f} mm, scaling {args.scaling}, {res.n_iterations} iterations)")
    print(f"backend {res.backend}/{res.mode}, {elapsed:.2f} s, plan marginal error {res.marginal_error:.2e}")
    print(f"OT displacement to the mirrored right hemisphere: mean {norms.mean():.2f} mm, "
          f"median {np.median(norms):.2f} mm, 95th percentile {np.percentile(norms, 95):.2f} mm")
    print(f"wrote {csv_path}")
    if args.no_register:
        return 0

    from shapeot.registration import RegistrationConfig, register

    config = RegistrationConfig.from_preset("nonrigid", engine={"backend": args.backend})
    steps = ["pre-alignment", "smooth warp"] + (["fine-tuning"] if config.finetune is not None else [])
    print(f"registering (preset nonrigid): {', '.join(steps)}")
    bar = _Bar()
    try:
        reg = register(source, mirrored, config, progress=bar)
    finally:
        bar.close()
    written = write_registration(reg, out / "lh_to_mirrored_rh_warped.vtp",
                                 summary=out / "lh_to_mirrored_rh_summary.json", outputs=reg_out)
    print(_metrics_table(reg.metrics, source.units))
    print(f"time {reg.timings['total']:.1f} s")
    for p in written:
        print(f"wrote {p}")
    return 0


def _cmd_template(args) -> int:
    """Population template of a folder: template mesh, corresponded subjects, modes, summary, plot."""
    import importlib.util

    import numpy as np

    from shapeot.core.outputs import check_writable_folder
    from shapeot.templates import TemplateConfig, load_folder, template
    from shapeot.templates.write import check_template_folder, write_template

    folder, out = Path(args.folder), Path(args.output)
    if not folder.exists():
        raise CliError(f"{folder}: no such folder (give the folder that holds the subjects' meshes or scans)")
    if not folder.is_dir():
        raise CliError(f"{folder}: is a file, not a folder; give the folder that holds the subjects' meshes or "
                       "scans (to register two files, use shapeot register)")
    if out.resolve() == folder.resolve() or folder.resolve().is_relative_to(out.resolve()):
        raise CliError(f"output {out} would replace the input folder {folder}; choose another output folder")
    check_template_folder(out, overwrite=args.overwrite)
    check_writable_folder(out)
    config = TemplateConfig(preset=args.preset, iterations=args.iterations, tolerance_mm=args.tolerance,
                            n_modes=args.modes)
    plot = importlib.util.find_spec("matplotlib") is not None
    if not plot:  # said now, not after the work
        print("note: matplotlib is not installed, so convergence.png will not be written (pip install matplotlib)")
    options = {"n_points": args.points} if args.points else {}
    loaded = load_folder(folder, pattern=args.pattern, label=args.label, surf=args.surf, units=args.units,
                         to_units=args.to_units, **options)
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
    its = [h for h in tpl.history if h.stage == "template"]
    print(f"{len(its)} iteration(s), last move {its[-1].value:.3f} mm RMS along the normals "
          f"({'converged' if tpl.converged else 'not converged'}, tolerance {args.tolerance} mm)")
    sds = ", ".join(f"{np.sqrt(v):.2f} mm ({100 * r:.0f} %)" for v, r in
                    zip(tpl.modes.variances, tpl.modes.explained_variance_ratio))
    print(f"modes (SD, share of variance): {sds or 'none'}")
    print(f"time {tpl.timings['total']:.1f} s (Procrustes {tpl.timings['procrustes']:.1f} s, iterations "
          f"{tpl.timings['iterations']:.1f} s, statistics {tpl.timings['statistics']:.1f} s) on {tpl.executor}")
    print(f"wrote {len(written)} files to {out}")
    return 0


def _cmd_backends(args) -> int:
    _check_device(args.device)
    from shapeot.ot.backends import available_backends, keops_verdict

    print("available:", ", ".join(available_backends(args.device)))
    v = keops_verdict(args.device)
    print(f"keops on {args.device}: {'ok' if v.ok else 'not usable'} ({v.reason})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shapeot", description="3D shape analysis with optimal transport.")
    p.add_argument("--version", action="version", version=f"shapeot {_version()}")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch and numba, 1 to 4 x the CPUs (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress output (results and errors are still printed)")
    sub = p.add_subparsers(dest="command", required=True)

    def ot_options(q, scaling):
        q.add_argument("--blur", type=float, default=None, help="blur in mm (default: 1%% of the diameter)")
        q.add_argument("--scaling", type=float, default=scaling, help="epsilon-scaling ratio in (0, 1)")
        q.add_argument("--backend", default="auto", choices=["auto", "torch", "keops"])

    def input_options(q, label_help):
        q.add_argument("--label", default=None, help=label_help)
        q.add_argument("--units", default=None, choices=UNIT_CHOICES,
                       help="units of the input files' coordinates where the files do not say (default: from the "
                            "file, else mm unless the size says otherwise, with a warning)")
        q.add_argument("--to-units", default=None, choices=UNIT_CHOICES,
                       help="convert every input to these units before the work (inputs in different units are "
                            "refused otherwise)")

    m = sub.add_parser("match", help="write OT correspondences between two meshes (CSV)")
    m.add_argument("source")
    m.add_argument("target")
    m.add_argument("-o", "--output", required=True, help="CSV file to write (.csv)")
    m.add_argument("--reach", type=float, default=None, help="reach in mm for unbalanced OT (default: balanced)")
    m.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    ot_options(m, 0.8)
    input_options(m, "label value (or segment name) of the surface to extract from label-map inputs")
    m.set_defaults(func=_cmd_match)

    r = sub.add_parser("register", help="register SOURCE onto TARGET: warped mesh, displacement, correspondences",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Presets: rigid (OT pre-alignment by rotation and translation); affine (rigid, then "
                                   "affine rounds); nonrigid (rigid, then coarse-to-fine Gaussian kernel splines: "
                                   "accurate; a step that could fold is split into injective Euler steps); "
                                   "diffeomorphic "
                                   "(rigid, then LDDMM geodesic shooting and the finest spline level in injective "
                                   "steps: invertible by construction).")
    r.add_argument("source", help="source mesh, label map (with --label) or FreeSurfer subject folder (with --surf)")
    r.add_argument("target", help="target mesh, label map or FreeSurfer subject folder")
    r.add_argument("--config", metavar="FILE.toml", default=None,
                   help="any RegistrationConfig field, over the preset (see --print-config for the names)")
    r.add_argument("--print-config", action="store_true", help="print the effective configuration (TOML) first")
    r.add_argument("-o", "--output", required=True,
                   help="warped mesh to write (format by extension: .vtp, .vtk, .ply, .obj, .stl, .gii, ...); "
                        "STEM_displacement.csv, STEM_correspondences.csv and STEM_prealign.txt go beside it")
    r.add_argument("--preset", default=None, choices=["rigid", "affine", "nonrigid", "diffeomorphic"],
                   help="registration preset (described above; default: the --config file's, else nonrigid)")
    r.add_argument("--landmarks", nargs=2, metavar=("SRC.csv", "TGT.csv"),
                   help="corresponding landmarks (x, y, z per row, in the shapes' units), carried through and scored")
    r.add_argument("--device", default=None, help="torch device: auto (the GPU when there is one), cpu, cuda or "
                                                   "cuda:N (default: the configuration's, auto)")
    r.add_argument("--backend", default=None, choices=["auto", "torch", "keops", "triton"],
                   help="OT backend (default: the configuration's, auto)")
    r.add_argument("--json", default=None, help="also write a JSON summary (metrics, timings, configuration; .json)")
    r.add_argument("--overwrite", action="store_true", help="replace output files that exist (only those)")
    r.add_argument("--surf", default="lh.pial",
                   help="surface read from FreeSurfer subject folders given as SOURCE/TARGET (default lh.pial)")
    r.add_argument("--save-transform", metavar="T.npz",
                   help="write the whole map (pre-alignment and every level); apply it with `shapeot apply`")
    r.add_argument("--itk-transform", metavar="PATH.h5",
                   help="write the warp as an ITK displacement-field transform (LPS; .h5 or .nii.gz): its "
                        "TransformPoint moves source points onto the target (SimpleITK, ANTs, Slicer)")
    r.add_argument("--itk-inverse", action="store_true",
                   help="write the inverse field instead (for resampling source images onto the target)")
    r.add_argument("--overlay", action="append", default=[], metavar="FILE",
                   help="per-vertex data of the source (lh.thickness, lh.aparc.annot, .label, .gii, .mgh; a bare "
                        "name is looked up in a subject's surf/ and label/), written on the target's vertices as "
                        "STEM_NAME in its own format; repeatable")
    input_options(r, "label value (or segment name) of the surface to extract from label-map inputs")
    r.set_defaults(func=_cmd_register)

    a = sub.add_parser("apply", help="move a mesh, a points CSV or a landmark file with a saved transform")
    a.add_argument("transform", help="file written by `shapeot register --save-transform`")
    a.add_argument("input", help="mesh (any format shapeot reads, e.g. lh.white), CSV with x,y,z columns, "
                                 "or landmarks (.csv, .fcsv)")
    a.add_argument("-o", "--output", required=True, help="file to write (meshes: the format follows the extension)")
    a.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    a.set_defaults(func=_cmd_apply)

    g = sub.add_parser("register-many", help="register many sources onto one target; one summary table (CSV)")
    g.add_argument("sources", metavar="SOURCE_FOLDER_OR_LIST",
                   help="folder of meshes and/or FreeSurfer subject folders, or a .txt file listing paths")
    g.add_argument("target", help="target mesh or FreeSurfer subject folder")
    g.add_argument("-o", "--output", required=True,
                   help="folder: summary.csv and SUBJECT/{warped mesh, transform.npz, summary.json, overlays}")
    g.add_argument("--preset", default="nonrigid", choices=["rigid", "affine", "nonrigid", "diffeomorphic"],
                   help="registration preset (default nonrigid)")
    g.add_argument("--surf", default="lh.pial", help="surface of subject folders (default lh.pial)")
    g.add_argument("--pattern", default=None, help="shell pattern of the files to use in the folder")
    g.add_argument("--overlay", action="append", default=[], metavar="NAME",
                   help="subject overlay (lh.thickness, lh.aparc.annot) carried onto the target; repeatable")
    g.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                   help="Dask: 'local' (LocalCluster) or tcp://host:port (default: in-process)")
    g.add_argument("--format", default="vtp", choices=["vtp", "vtk", "ply", "gii"], help="mesh format (default vtp)")
    g.add_argument("--device", default="cpu", help="torch device (default cpu)")
    g.add_argument("--backend", default="auto", choices=["auto", "torch", "keops"])
    g.add_argument("--overwrite", action="store_true", help="replace output files that exist (only those)")
    g.set_defaults(func=_cmd_register_many)

    t = sub.add_parser("template", help="build a population template from a folder of meshes or label maps")
    t.add_argument("folder", help="folder of meshes or label maps (one subject per file) and/or FreeSurfer subject "
                                  "folders (a SUBJECTS_DIR; other subfolders are ignored)")
    t.add_argument("-o", "--output", required=True,
                   help="folder to create: template mesh, subjects/ (corresponded meshes, displacements), "
                        "modes/ (mean, modes, variances), summary.json, convergence.png")
    t.add_argument("--pattern", default=None,
                   help="shell pattern of the entries to use, e.g. 'subject_*.gii' or 'sub-*'; with a '/' a path "
                        "pattern below the folder, e.g. '*/surf/lh.white'")
    t.add_argument("--surf", default="lh.pial", help="surface read from FreeSurfer subject folders (default lh.pial)")
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
    t.add_argument("--overwrite", action="store_true",
                   help="write into OUTDIR even if it holds files, replacing the files of the same names "
                        "(other files are kept)")
    input_options(t, "label value (or segment name) to extract from every scan")
    t.set_defaults(func=_cmd_template)

    d = sub.add_parser("demo", help="OT match of the two sample brain hemispheres")
    d.add_argument("-o", "--output", default="out/demo", help="folder for the results (default out/demo)")
    d.add_argument("--no-register", action="store_true", help="stop after the OT match")
    d.add_argument("--overwrite", action="store_true", help="replace the results of a previous run")
    ot_options(d, 0.8)
    d.set_defaults(func=_cmd_demo)

    b = sub.add_parser("backends", help="list the OT backends that work here")
    b.add_argument("--device", default="cpu")
    b.set_defaults(func=_cmd_backends)
    return p


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"shapeot: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 user error, 130 cancelled or interrupted).

    Expected errors (bad files or arguments, a device or backend that cannot run, outputs that
    exist) print one line; set ``SHAPEOT_DEBUG=1`` to see the traceback instead.
    """
    global _QUIET
    args = build_parser().parse_args(argv)
    _QUIET = bool(args.quiet)
    cores = os.cpu_count() or 1
    if args.threads is not None and not 1 <= args.threads <= 4 * cores:
        print(f"shapeot: error: --threads must be between 1 and {4 * cores} (4 x the {cores} CPUs here); "
              f"got {args.threads}", file=sys.stderr)
        return 2
    with _threads(args.threads), warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _run(args)


@contextlib.contextmanager
def _threads(n: int | None):
    """torch's and numba's CPU threads set to ``n`` for the command and restored afterwards, so
    that ``main()`` called in-process (tests, scripts) leaves the process as it found it."""
    if n is None:
        yield
        return
    import torch

    torch_before = torch.get_num_threads()
    torch.set_num_threads(n)
    numba = None
    try:
        import numba
    except ImportError:
        pass
    numba_before = numba.get_num_threads() if numba is not None else None
    if numba is not None:  # at most the threads numba launched (NUMBA_NUM_THREADS, all cores by default)
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        torch.set_num_threads(torch_before)
        if numba is not None:
            numba.set_num_threads(numba_before)


def _run(args) -> int:
    """The command, with expected errors as one line and an exit status."""
    from shapeot.core.outputs import InterruptedAfterCommit

    try:
        return args.func(args)
    except (CliError, ValueError, OSError, ImportError, RuntimeError, ArithmeticError) as exc:
        # RuntimeError: the engine's BackendUnavailable, torch device errors;
        # ArithmeticError: a non-finite solution (FloatingPointError).
        if os.environ.get("SHAPEOT_DEBUG") == "1":
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, (RuntimeError, ArithmeticError)) and not isinstance(exc, CliError):
            text = f"{type(exc).__name__}: {text}"
        print(f"shapeot: error: {text}", file=sys.stderr)
        return 2
    except Cancelled:
        print("shapeot: cancelled; nothing was written", file=sys.stderr)
        return 130
    except InterruptedAfterCommit:
        print("shapeot: interrupted; the outputs had been written in full and were kept", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("shapeot: interrupted; nothing was written", file=sys.stderr)
        return 130
