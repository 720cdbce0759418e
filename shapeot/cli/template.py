"""Command ``template``: a population template from a folder, its statistics and its group overlays."""
from __future__ import annotations

from pathlib import Path

from . import options
from .common import BACKENDS, Bar, CliError, template_config

__all__ = ["cmd_template", "add_parser"]


def add_parser(sub, shared) -> None:
    """The ``template`` sub-command."""
    t = sub.add_parser("template", parents=[shared],
                       help="build a population template from a folder of meshes or label maps")
    t.add_argument("folder", help="folder of meshes or label maps (one subject per file) and/or FreeSurfer subject "
                                  "folders (a SUBJECTS_DIR; other subfolders are ignored)")
    t.add_argument("-o", "--output", default=None,
                   help="folder to create: template mesh, subjects/ (corresponded meshes, displacements), "
                        "modes/ (mean, modes, variances), overlays/, summary.json, convergence.png")
    t.add_argument("--config", metavar="FILE.toml", default=None,
                   help="a template configuration (TOML; --print-config shows every field, with the "
                        "[registration] table of the template-to-subject registrations)")
    t.add_argument("--print-config", action="store_true", help="print the effective configuration (TOML) and exit")
    t.add_argument("--json", default=None, metavar="FILE.json", help="also write the summary JSON there")
    t.add_argument("--pattern", default=None,
                   help="shell pattern of the entries to use, e.g. 'subject_*.gii' or 'sub-*'; with a '/' a path "
                        "pattern below the folder, e.g. '*/surf/lh.white'")
    t.add_argument("--surf", default="lh.pial",
                   help="surface read from FreeSurfer subject folders: lh.pial, rh.white, or pial for lh.pial "
                        "(default lh.pial)")
    t.add_argument("--overlay", action="append", default=[], metavar="NAME",
                   help="an overlay of every subject folder (lh.thickness, lh.aparc.annot): its mean and SD "
                        "(labels: the most frequent label and the agreement) on the template's vertices, in "
                        "overlays/; repeatable")
    t.add_argument("--points", type=int, default=None, help="label maps: decimate each surface to this many vertices")
    t.add_argument("--preset", default=None, choices=["affine", "nonrigid", "diffeomorphic"],
                   help="registration of the template to each subject (default: the configuration's, nonrigid)")
    t.add_argument("--iterations", type=int, default=None, help="most template updates (default 4)")
    t.add_argument("--tolerance", type=float, default=None,
                   help="stop when the template's surface moves less than this, mm RMS along the normals "
                        "(default 0.2)")
    t.add_argument("--modes", type=int, default=None, help="principal modes to write (default 5)")
    t.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                   help="run the subjects on Dask: 'local' starts a LocalCluster with one worker per core; "
                        "tcp://host:port uses a running scheduler (default: in this process)")
    t.add_argument("--format", default="vtp", choices=["vtp", "vtk", "ply", "gii"], help="mesh format (default vtp)")
    t.add_argument("--device", default=None, help="torch device of the registrations (default auto)")
    t.add_argument("--backend", default=None, choices=BACKENDS, help="OT backend (default auto)")
    t.add_argument("--overwrite", action="store_true",
                   help="write into OUTDIR even if it holds files, replacing the files of the same names "
                        "(other files are kept)")
    options.inputs(t, "label value (or segment name) to extract from every scan")
    t.set_defaults(func=cmd_template)


def _check_folders(args) -> tuple[Path, Path]:
    from shapeot.core.outputs import check_writable_folder
    from shapeot.templates.write import check_template_folder

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
    if args.json is not None and not str(args.json).lower().endswith(".json"):
        raise CliError(f"--json {args.json}: the summary is written as JSON; give a file name ending in .json")
    return folder, out


def cmd_template(args) -> int:
    """Population template of a folder: template mesh, corresponded subjects, modes, overlays, summary, plot."""
    import importlib.util

    from shapeot.templates import load_folder, template
    from shapeot.templates.write import write_template

    config = template_config(args)
    if args.print_config:
        print(config.to_toml(), end="")
        return 0
    if args.output is None:
        raise CliError("-o/--output is required (a folder to create), unless --print-config")
    folder, out = _check_folders(args)
    plot = importlib.util.find_spec("matplotlib") is not None
    if not plot:  # said now, not after the work
        print("note: matplotlib is not installed, so convergence.png will not be written (pip install matplotlib)")
    options = {"n_points": args.points} if args.points else {}
    loaded = load_folder(folder, pattern=args.pattern, label=args.label, surf=_surf(args.surf), units=args.units,
                         to_units=args.to_units, **options)
    print(loaded.report())
    _check_overlays(loaded, args.overlay)
    where = "in-process" if args.scheduler is None else f"Dask scheduler {args.scheduler}"
    print(f"template of {len(loaded)} subjects ({sum(s.n_points for s in loaded) // len(loaded)} vertices on "
          f"average), preset {config.preset}, at most {config.iterations} iterations, {where}")
    bar = Bar()
    try:
        tpl = template(loaded, config, executor=args.scheduler, progress=bar)
    except Exception as exc:  # noqa: BLE001 - a cluster failure becomes one line, like any user error
        if type(exc).__module__.split(".")[0] in ("distributed", "dask"):
            raise CliError(f"the Dask cluster failed: {type(exc).__name__}: {exc}") from exc
        raise
    finally:
        bar.close()
    overlays = _group_overlays(tpl, args.overlay)
    written = write_template(tpl, out, overwrite=args.overwrite, fmt=args.format, plot=plot, overlays=overlays,
                             summary=args.json)
    _report(tpl, config)
    print(f"wrote {len(written)} files to {out}")
    return 0


def _check_overlays(loaded, names: list[str]) -> None:
    """Every subject has each overlay: said before the work, naming the subject."""
    from shapeot.shapes.freesurfer import subject_file

    for name in names:
        for path, shape in zip(loaded.paths, loaded):
            folder = shape.meta.get("freesurfer_subject")
            if folder is None:
                raise CliError(f"--overlay {name}: {path} is not a FreeSurfer subject folder, where overlays are "
                               "looked up by name; give a folder of subject folders")
            try:
                subject_file(folder, name)
            except FileNotFoundError as exc:
                raise CliError(f"--overlay {name}: {exc}") from None


def _group_overlays(tpl, names: list[str]) -> dict:
    from shapeot.templates.overlays import subject_overlays, template_overlays

    out = {}
    for name in names:
        print(f"overlay {name}: {len(tpl.subjects)} subjects onto the template", flush=True)
        out[name] = template_overlays(tpl, subject_overlays(tpl, name))
    return out


def _report(tpl, config) -> None:
    import numpy as np

    lines = [f"{'subject':<28} {'weight':>7} {'deform RMS':>11} {'surface':>8} {'fit':>6}  (mm)"]
    for s, name in enumerate(tpl.names):
        d = {k: v[s] for k, v in tpl.distances.items()}
        lines.append(f"{name[:28]:<28} {tpl.weights[s]:>7.3f} {d['deformation_rms']:>11.3f} "
                     f"{d.get('surface', float('nan')):>8.3f} {d.get('fit', float('nan')):>6.3f}"
                     + ("  (medoid)" if s == tpl.medoid else ""))
    print("\n".join(lines))
    its = [h for h in tpl.history if h.stage == "template"]
    print(f"{len(its)} iteration(s), last move {its[-1].value:.3f} mm RMS along the normals "
          f"({'converged' if tpl.converged else 'not converged'}, tolerance {config.tolerance_mm} mm)")
    sds = ", ".join(f"{np.sqrt(v):.2f} mm ({100 * r:.0f} %)" for v, r in
                    zip(tpl.modes.variances, tpl.modes.explained_variance_ratio))
    print(f"modes (SD, share of variance): {sds or 'none'}")
    print(f"time {tpl.timings['total']:.1f} s (Procrustes {tpl.timings['procrustes']:.1f} s, iterations "
          f"{tpl.timings['iterations']:.1f} s, statistics {tpl.timings['statistics']:.1f} s) on {tpl.executor}")


def _surf(surf: str) -> str:
    from shapeot.shapes.freesurfer import hemisphere_surface

    return hemisphere_surface(surf, None)[1]
