"""Commands ``register`` (one pair, or both hemispheres) and ``register-many`` (many sources, one target).

Every output of a run (the warped meshes, transforms, ITK and ANTs files, moved landmarks,
overlays, JSON summaries, both hemispheres') is declared and checked before the first
registration, staged, and committed together at the end: all of them appear or none does.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .common import (
    Bar,
    CliError,
    check_device,
    hemi_path,
    hemis,
    load_input,
    metrics_table,
    registration_config,
    resolve_input,
    same_units,
    timing_line,
)

__all__ = ["cmd_register", "cmd_register_many"]


@dataclasses.dataclass
class _Pair:
    """One registration of a run: its hemisphere and the outputs declared for it."""

    hemi: str
    out: Path
    json: Path | None
    extra: dict  # role -> path (transform, landmarks) or ITK paths
    overlays: list = dataclasses.field(default_factory=list)  # (Overlay, output path)
    source: object = None
    target: object = None
    landmarks: tuple | None = None


def cmd_register(args) -> int:
    config = registration_config(args)
    if args.print_config:
        print(config.to_toml(), end="")
        return 0
    if args.output is None:
        raise CliError("-o/--output is required (the warped mesh to write), unless --print-config")
    check_device(config.engine.device)
    from shapeot.core.outputs import OutputSet

    src, tgt = resolve_input(args.source, args), resolve_input(args.target, args)
    inputs = [src, tgt] + [Path(p) for p in (args.landmarks or [])]
    with OutputSet(overwrite=args.overwrite, inputs=inputs) as outputs:
        pairs = [_declare(args, hemi, outputs) for hemi in hemis(args)]  # every path checked before any work
        for pair in pairs:
            _read(args, pair, src, tgt)
        for pair in pairs:
            _register(args, config, pair, outputs)
        written = outputs.commit()
    for p in written:
        print(f"wrote {p}")
    return 0


def _declare(args, hemi: str, outputs) -> _Pair:
    from shapeot.registration.write import check_registration_outputs, output_stem

    out, json_path = hemi_path(args.output, hemi, args), hemi_path(args.json, hemi, args)
    check_registration_outputs(out, summary=json_path, outputs=outputs)
    stem, extra = output_stem(out), {}
    if args.save_transform:
        if not args.save_transform.endswith(".npz"):
            raise CliError(f"--save-transform {args.save_transform}: shapeot transforms are .npz files")
        extra["transform"] = outputs.add(hemi_path(args.save_transform, hemi, args))
    extra.update(_itk_paths(args, hemi, outputs))
    if args.landmarks:
        suffix = Path(args.landmarks[0]).suffix or ".csv"
        extra["landmarks"] = outputs.add(out.with_name(f"{stem}_landmarks{suffix}"))
    return _Pair(hemi, out, json_path, extra)


def _itk_paths(args, hemi: str, outputs, folder: Path | None = None) -> dict:
    """The ITK / ANTs outputs asked for, declared in ``outputs`` (relative to ``folder`` for batches)."""
    from shapeot.deform.itk import _output_paths

    def where(p):
        return None if p is None else (folder / p if folder is not None else hemi_path(p, hemi, args))

    try:
        paths = _output_paths(where(args.itk_transform), where(args.itk_inverse), where(args.ants)) \
            if any((args.itk_transform, args.itk_inverse, args.ants)) else {}
    except ValueError as exc:
        raise CliError(f"--itk-transform / --itk-inverse / --ants: {exc}") from None
    return {role: outputs.add(p) for role, p in paths.items()}


def _read(args, pair: _Pair, src: Path, tgt: Path) -> None:
    """The shapes, landmarks and overlays of a pair, checked before the work."""
    from shapeot.shapes.landmarks import read_landmarks
    from shapeot.shapes.units import unit_factor

    raw = [load_input(p, args, pair.hemi, label=args.label, convert=False) for p in (src, tgt)]
    pair.source, pair.target = (s.to_units(args.to_units) if args.to_units else s for s in raw)
    same_units(pair.source, pair.target)
    if args.landmarks:
        marks = [read_landmarks(p) for p in args.landmarks]
        if args.to_units:  # landmarks are in their shapes' units as read: converted like the shapes
            marks = [m * unit_factor(s.units, args.to_units) for m, s in zip(marks, raw)]
        if marks[0].shape != marks[1].shape:
            raise CliError(f"{len(marks[0])} source landmarks but {len(marks[1])} target landmarks")
        pair.landmarks = (marks[0], marks[1])
    if args.overlay:
        from shapeot.registration.write import output_stem
        from shapeot.shapes.freesurfer import is_subject_dir, subject_file
        from shapeot.shapes.overlays import read_overlay

        for name in args.overlay:
            if getattr(args, "hemi", None) == "both" and name[:3] in ("lh.", "rh."):
                name = f"{pair.hemi}.{name[3:]}"  # each hemisphere's own overlay
            path = subject_file(src, name) if is_subject_dir(src) and not Path(name).exists() else Path(name)
            pair.overlays.append((read_overlay(path, pair.source),
                                  pair.out.with_name(f"{output_stem(pair.out)}_{Path(path).name}")))


def _register(args, config, pair: _Pair, outputs) -> None:
    """Register the pair and stage all its files in ``outputs``."""
    from shapeot.registration import register
    from shapeot.registration.write import stage_registration
    from shapeot.shapes.freesurfer import frame_of, in_frame

    print(f"source: {pair.source.name}: {pair.source.n_points} vertices; target: {pair.target.name}: "
          f"{pair.target.n_points} vertices; units {pair.source.units}; preset {config.preset}", flush=True)
    bar = Bar()
    try:
        reg = register(pair.source, pair.target, config, progress=bar, landmarks=pair.landmarks)
    finally:
        bar.close()
    if args.frame == "source":
        reg = dataclasses.replace(reg, warped=in_frame(reg.warped, frame_of(reg.source)))
    stage_registration(reg, pair.out, outputs, summary=pair.json)
    _stage_extras(args, reg, pair, outputs)
    print(metrics_table(reg.metrics, pair.source.units))
    print(timing_line(reg.timings))


def _stage_extras(args, reg, pair: _Pair, outputs) -> None:
    """--save-transform, the ITK / ANTs files, the moved landmarks and the --overlay files."""
    from shapeot.shapes.freesurfer import frame_of

    extra = pair.extra
    if "transform" in extra:
        from shapeot.deform.serialize import write_transform_file

        write_transform_file(reg.deformation, outputs.stage(extra["transform"]), target_frame=frame_of(reg.target),
                             meta={"source": str(args.source), "target": str(args.target),
                                   "source_path": _path_of(reg.source), "target_path": _path_of(reg.target),
                                   "surf": args.surf, "hemi": pair.hemi, "preset": reg.config.preset})
    itk = {k: v for k, v in extra.items() if k in ("forward", "inverse", "ants_affine", "ants_warp",
                                                   "ants_inverse_warp")}
    if itk:
        _stage_itk(reg.deformation, reg.source.points, itk, args.reference, outputs)
    if "landmarks" in extra:
        from shapeot.deform.serialize import apply_to_file

        apply_to_file(reg.deformation, args.landmarks[0], outputs.stage(extra["landmarks"]))
    if pair.overlays:
        from shapeot.registration.transfer import transfer_with_map
        from shapeot.shapes.overlays import overlay_format, write_overlay_file

        for ov, path in pair.overlays:  # the resampling of `shapeot transfer`: the same values later
            moved = transfer_with_map(ov, reg.source, reg.target, reg.deformation)
            write_overlay_file(moved, outputs.stage(path), overlay_format(path, for_writing=True), surface=reg.target)


def _path_of(shape) -> str | None:
    src = getattr(shape, "source", None)
    return None if src is None or src.path is None else str(Path(src.path).resolve())


def _stage_itk(deformation, points, paths: dict, reference, outputs) -> None:
    from shapeot.deform.itk import export_itk

    forward, inverse = paths.get("forward"), paths.get("inverse")
    prefix = str(paths["ants_affine"])[: -len("0GenericAffine.mat")] if "ants_affine" in paths else None
    bar = Bar()
    try:
        info = export_itk(deformation, points, forward=forward, inverse=inverse, ants_prefix=prefix,
                          reference=reference, outputs=outputs, progress=bar)
    finally:
        bar.close()
    grid = "none (a linear map)" if info.grid is None else \
        f"{'x'.join(map(str, info.grid.size))} at {info.spacing_mm:.2f} mm"
    print(f"ITK transforms: grid {grid}; error at the vertices {info.max_error_mm:.3f} mm; field at the grid's "
          f"border {info.border_mm:.3g} mm")


def cmd_register_many(args) -> int:
    """Every source of a folder or list onto one target; one summary table."""
    from shapeot.registration.batch import register_many

    config = registration_config(args)
    if args.print_config:
        print(config.to_toml(), end="")
        return 0
    if args.output is None:
        raise CliError("-o/--output is required (a folder), unless --print-config")
    check_device(config.engine.device)
    if args.json is not None and not str(args.json).lower().endswith(".json"):
        raise CliError(f"--json {args.json}: the summary is written as JSON; give a file name ending in .json")
    itk = {"forward": args.itk_transform, "inverse": args.itk_inverse, "ants_prefix": args.ants,
           "reference": args.reference}
    from shapeot.shapes.freesurfer import hemisphere_surface

    surf = hemisphere_surface(args.surf, None)[1]  # "pial" -> "lh.pial"; "rh.white" stays
    bar = Bar()
    try:
        res = register_many(args.sources, str(resolve_input(args.target, args)), config, Path(args.output),
                            executor=args.scheduler, surf=surf, pattern=args.pattern, mesh_format=args.format,
                            overlays=args.overlay, overwrite=args.overwrite, progress=bar, itk=itk,
                            summary_json=args.json)
    except Exception as exc:  # noqa: BLE001 - a cluster failure is a user-facing error, not a traceback
        if type(exc).__module__.split(".")[0] in ("distributed", "dask"):
            raise CliError(f"the Dask cluster failed: {type(exc).__name__}: {exc}") from exc
        raise
    finally:
        bar.close()
    for r in res.rows:
        print(f"{r['subject']:<28} {r['status']:<7} {r.get('seconds', 0):6.1f} s  {r['error']}")
    skipped = f", {len(res.skipped)} skipped" if res.skipped else ""
    print(f"{len(res.ok)} registered, {len(res.failed)} failed{skipped} ({res.executor}); wrote {res.summary_csv}")
    return 0 if not res.failed else 1
