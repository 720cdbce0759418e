"""Commands that use a saved transform: ``apply`` (move files), ``transfer`` (carry overlays),
``export-itk`` (ITK composite transforms and ANTs' file pair)."""
from __future__ import annotations

from pathlib import Path

from .common import Bar, CliError, load_input, resolve_input

__all__ = ["cmd_apply", "cmd_transfer", "cmd_export_itk"]


def cmd_apply(args) -> int:
    from shapeot.deform.serialize import apply_transform

    transform, source, out = Path(args.transform), Path(args.input), Path(args.output)
    print(f"wrote {apply_transform(transform, source, out, overwrite=args.overwrite, frame=args.frame)}")
    return 0


def _saved(path: str | Path):
    """(deformation, header meta) of a transform file."""
    from shapeot.deform.serialize import read_transform

    deformation, header = read_transform(path)
    return deformation, dict(header.get("meta") or {})


def _surface(given: str | None, recorded: str | None, role: str, args, meta: dict, transform: str):
    """The source or target surface: ``--source`` / ``--target`` (a file, a subject folder or ID),
    else the path the transform recorded; (shape, its subject folder or None)."""
    from shapeot.shapes.freesurfer import resolve_subject

    name = given or recorded
    if name is None:
        raise CliError(f"{transform} does not record its {role} surface: give --{role} (a surface file or a subject)")
    path = resolve_input(name, args)
    if not given and not path.exists():
        raise CliError(f"the {role} recorded in {transform} ({name}) no longer exists: give --{role}")
    hemi = getattr(args, "hemi", None) or meta.get("hemi")
    subject = resolve_subject(path, getattr(args, "subjects_dir", None))
    if subject is None and path.is_file() and path.parent.name == "surf" and (path.parent.parent / "surf").is_dir():
        subject = path.parent.parent
    return load_input(path, args, hemi), subject


def cmd_transfer(args) -> int:
    """Overlays of the source onto the target's vertices, from a saved transform (mri_surf2surf's job)."""
    from shapeot.core.outputs import OutputSet
    from shapeot.registration.transfer import transfer_with_map
    from shapeot.shapes.freesurfer import subject_file
    from shapeot.shapes.overlays import overlay_format, read_overlay, write_overlay_file

    deformation, meta = _saved(args.transform)
    source, src_subject = _surface(args.source, meta.get("source_path"), "source", args, meta, args.transform)
    target, _ = _surface(args.target, meta.get("target_path"), "target", args, meta, args.transform)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CliError(f"output {out} is a file; give a folder")
    with OutputSet(overwrite=args.overwrite, inputs=[args.transform, *args.overlays]) as outputs:
        jobs = []
        for name in args.overlays:  # read and checked against the source before any work
            path = Path(name)
            if not path.exists() and src_subject is not None:
                path = subject_file(src_subject, name)
            jobs.append((read_overlay(path, source), outputs.add(out / path.name)))
        for ov, dest in jobs:
            moved = transfer_with_map(ov, source, target, deformation)
            write_overlay_file(moved, outputs.stage(dest), overlay_format(dest, for_writing=True), surface=target)
            print(f"{ov.name}: {ov.n_vertices} source vertices -> {moved.n_vertices} target vertices", flush=True)
        written = outputs.commit()
    for p in written:
        print(f"wrote {p}")
    return 0


def cmd_export_itk(args) -> int:
    """ITK composite transforms and ANTs' file pair from a saved transform."""
    from shapeot.deform.itk import export_itk

    if not any((args.itk_transform, args.itk_inverse, args.ants)):
        raise CliError("nothing to write: give --itk-transform F.h5, --itk-inverse I.h5 and/or --ants PREFIX")
    deformation, meta = _saved(args.transform)
    source, _ = _surface(args.source, meta.get("source_path"), "source", args, meta, args.transform)
    bar = Bar()
    try:
        info = export_itk(deformation, source.points, forward=args.itk_transform, inverse=args.itk_inverse,
                          ants_prefix=args.ants, reference=args.reference, overwrite=args.overwrite, progress=bar)
    finally:
        bar.close()
    grid = "none (a linear map)" if info.grid is None else \
        f"{'x'.join(map(str, info.grid.size))} at {info.spacing_mm:.2f} mm"
    print(f"grid {grid}; error at the source's vertices {info.max_error_mm:.3f} mm; field at the grid's border "
          f"{info.border_mm:.3g} mm")
    for p in info.paths.values():
        print(f"wrote {p}")
    return 0
