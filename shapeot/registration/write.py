"""Write a :class:`~shapeot.registration.Registration` to files: the outputs of ``shapeot register``.

Used by the command line (``register``, ``demo``) and by the desktop app's exports, so both
write the same files. For ``OUT = DIR/STEM.EXT`` (any mesh extension, e.g. ``warped.vtp``)::

    DIR/STEM.EXT                     the warped source: source faces, point data "displacement" (N, 3),
                                     "prealign_displacement", "nonrigid_displacement" (N, 3) and
                                     "normal_displacement" (N,) (meshes; VTP/VTK keep point data)
    DIR/STEM_displacement.csv        source_index, dx, dy, dz (the whole displacement), then
                                     nonrigid_dx, nonrigid_dy, nonrigid_dz (without the pre-alignment)
                                     and normal_mm (the non-rigid part along the outward normal;
                                     empty for a point cloud); full precision, source units
    DIR/STEM_correspondences.csv     source_index, target_x, target_y, target_z, target_index, mass
    DIR/STEM_prealign.txt            4x4 pre-alignment (source -> target), column vectors [x y z 1]
    SUMMARY (optional)               Registration.summary() as JSON (non-finite numbers as null)

All of them are checked before the work (:func:`registration_outputs`), staged, and committed
together by :class:`shapeot.core.outputs.OutputSet`: they all appear or none does, and none
replaces an existing file unless ``overwrite``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["output_stem", "registration_outputs", "check_registration_outputs", "write_registration",
           "stage_registration",
           "DISPLACEMENT_COLUMNS", "displacement_rows", "write_displacement_csv"]

#: The one layout of a displacement CSV, whoever writes it (``shapeot register``, batches, the app).
DISPLACEMENT_COLUMNS = ("source_index", "dx", "dy", "dz", "nonrigid_dx", "nonrigid_dy", "nonrigid_dz", "normal_mm")


def displacement_rows(source, displacement: np.ndarray, prealign: np.ndarray | None = None):
    """Rows of :data:`DISPLACEMENT_COLUMNS` for a displacement (N, 3) of the source's vertices (mm).

    ``prealign`` (4, 4): the linear part of the map (source -> target, column vectors); the
    non-rigid part is the displacement without it (the whole displacement when None, e.g. an
    OT match). ``normal_mm``: the non-rigid part along the outward vertex normals of the
    pre-aligned source (empty for a point cloud).
    """
    from shapeot.shapes.geometry import outward_vertex_normals

    p = np.asarray(source.points, dtype=np.float64)
    d = np.asarray(displacement, dtype=np.float64)
    if d.shape != p.shape:
        raise ValueError(f"displacement must be ({len(p)}, 3), one row per source vertex; got {d.shape}")
    moved = p if prealign is None else p @ np.asarray(prealign)[:3, :3].T + np.asarray(prealign)[:3, 3]
    nonrigid = p + d - moved
    faces = source.faces
    normal = np.full(len(p), np.nan) if faces is None or len(faces) == 0 else \
        np.einsum("ij,ij->i", nonrigid, outward_vertex_normals(moved, np.asarray(faces)))
    return ([i, *d[i], *nonrigid[i], normal[i]] for i in range(len(p)))


def write_displacement_csv(path: str | os.PathLike, source, displacement: np.ndarray,
                           prealign: np.ndarray | None = None) -> None:
    """:func:`displacement_rows` under their header, to ``path`` (a staged path: created, never replaced)."""
    from shapeot.core.outputs import write_csv_rows

    write_csv_rows(path, DISPLACEMENT_COLUMNS, displacement_rows(source, displacement, prealign))


def output_stem(path: str | os.PathLike) -> str:
    """The file name of ``path`` without its mesh extension (".gii.gz" counts as one)."""
    from shapeot.core.formats import strip_suffix

    return strip_suffix(path)


def registration_outputs(out_path: str | os.PathLike, summary: str | os.PathLike | None = None) -> dict[str, Path]:
    """The files :func:`write_registration` writes for the warped mesh ``out_path``, by role:
    "mesh", "displacement", "correspondences", "prealign" and, with ``summary``, "summary"."""
    out = Path(out_path)
    stem = output_stem(out)
    files = {
        "mesh": out,
        "displacement": out.with_name(f"{stem}_displacement.csv"),
        "correspondences": out.with_name(f"{stem}_correspondences.csv"),
        "prealign": out.with_name(f"{stem}_prealign.txt"),
    }
    if summary is not None:
        files["summary"] = Path(summary)
    return files


def check_registration_outputs(out_path: str | os.PathLike, *, summary: str | os.PathLike | None = None,
                               overwrite: bool = False, inputs=(), outputs=None):
    """Check every output path now (before the registration runs) and return the
    :class:`~shapeot.core.outputs.OutputSet` to give to :func:`write_registration` (``outputs``:
    declare them in this set instead of a new one).

    Raises
    ------
    UnsupportedFormatError
        For an extension that names no mesh format (the JSON summary must end in .json).
    FileExistsError
        If an output exists and ``overwrite`` is False.
    ValueError, OSError
        For an output that is an input, a folder, or in a folder that cannot be written.
    """
    from shapeot.core.outputs import OutputSet
    from shapeot.shapes.writing import check_output_path

    check_output_path(out_path)
    if summary is not None and not str(summary).lower().endswith(".json"):
        raise ValueError(f"{summary}: the summary is written as JSON; give a file name ending in .json")
    outputs = OutputSet(overwrite=overwrite, inputs=inputs) if outputs is None else outputs
    for path in registration_outputs(out_path, summary).values():
        outputs.add(path)
    return outputs


def write_registration(reg, out_path: str | os.PathLike, *, summary: str | os.PathLike | None = None,
                       overwrite: bool = False, outputs=None, inputs=()) -> list[Path]:
    """Write the warped mesh and its companion files (module docstring), all or none.

    Parameters
    ----------
    reg : Registration
    out_path : str or PathLike
        The warped mesh; its extension picks the format (.vtp keeps the displacement point data).
    summary : str or PathLike, optional
        Also write ``reg.summary()`` as JSON there.
    overwrite : bool, default: False
        Replace existing files (only these files).
    outputs : OutputSet, optional
        The set returned by :func:`check_registration_outputs` before the work (then
        ``overwrite`` and ``inputs`` are taken from it).
    inputs : iterable of paths
        Files never to write (the source and target files are always added).

    Returns
    -------
    list of Path
        The files written (absolute paths), mesh first.

    Raises
    ------
    FileExistsError
        If an output exists (or appeared during the run) and ``overwrite`` is False; nothing
        is written then.
    """
    if outputs is None:
        sources = [s.source.path for s in (reg.source, reg.target) if getattr(s, "source", None) is not None]
        outputs = check_registration_outputs(out_path, summary=summary, overwrite=overwrite,
                                             inputs=[*inputs, *sources])
    with outputs:
        stage_registration(reg, out_path, outputs, summary=summary)
        return outputs.commit()


def stage_registration(reg, out_path: str | os.PathLike, outputs, *,
                       summary: str | os.PathLike | None = None) -> None:
    """Write the files of :func:`write_registration` into the staging area of ``outputs`` (the
    caller commits them, with any other files of the same run)."""
    from shapeot.core.outputs import json_text, write_csv_rows
    from shapeot.matching import CSV_HEADER
    from shapeot.shapes.writing import check_output_path, write_shape

    files = registration_outputs(out_path, summary)
    fmt = check_output_path(files["mesh"], reg.warped)
    write_shape(reg.warped, outputs.stage(files["mesh"]), fmt, display=files["mesh"])
    write_displacement_csv(outputs.stage(files["displacement"]), reg.source, reg.displacement, reg.prealign)
    write_csv_rows(outputs.stage(files["correspondences"]), CSV_HEADER, reg.correspondences.rows())
    np.savetxt(outputs.stage(files["prealign"]), np.asarray(reg.prealign, dtype=np.float64), fmt="%.17g",
               header=f"4x4 pre-alignment (source -> target, {reg.source.units}), acting on column vectors "
                      "[x y z 1]")
    if summary is not None:
        outputs.stage(files["summary"]).write_text(json_text(reg.summary()))
