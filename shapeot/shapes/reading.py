"""Read one shape file: a mesh, a point cloud, or one label's surface of a segmented scan.

The file half of :func:`shapeot.shapes.io.load` (which also opens FreeSurfer subject folders):
:func:`read_file` reads the file in the format :func:`.filetypes.detect_format` names, validates
it and cleans it. Readers check what they read
against what the file promised and raise :class:`ShapeFileError` naming the file and the defect.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from shapeot.core.formats import SCAN_FORMATS

from .errors import ShapeError, ShapeFileError
from .filetypes import check_readable, detect_format
from .shape import Shape, Source

__all__ = ["read_file", "check_label", "list_labels"]


def check_label(label) -> int | str | None:
    """A label as given by a user: None, a whole number, or a segment name (str).

    Raises
    ------
    ValueError
        For a number that is not whole (``1.9`` would otherwise read label 1), a bool, NaN, or
        anything else.
    """
    import numbers

    if label is None or isinstance(label, str):
        return label
    if isinstance(label, (bool, np.bool_)):
        raise ValueError(f"label must be a whole number or a segment name; got {label!r}")
    if isinstance(label, numbers.Integral):
        return int(label)
    if isinstance(label, numbers.Real) and np.isfinite(float(label)) and float(label).is_integer():
        return int(label)
    raise ValueError(f"label must be a whole number or a segment name; got {label!r}")


def _check_options(smooth, n_points, method) -> None:
    import numbers

    if isinstance(smooth, bool) or not isinstance(smooth, numbers.Real) or not (np.isfinite(smooth) and smooth >= 0):
        raise ValueError(f"smooth must be a finite number of mm >= 0; got {smooth!r}")
    if n_points is not None and (isinstance(n_points, bool) or not isinstance(n_points, numbers.Real)
                                 or not np.isfinite(n_points) or n_points < 1 or float(n_points) != int(n_points)):
        raise ValueError(f"n_points must be a whole number >= 1 (or None); got {n_points!r}")
    if method not in ("marching_cubes", "surface_nets"):
        raise ValueError(f"method must be 'marching_cubes' or 'surface_nets'; got {method!r}")


def _units_of(path: str, points: np.ndarray, stated: str | None, given: str | None) -> str:
    """Units of a shape read from ``path``: given by the caller, else stated by the file, else inferred."""
    from .units import UnitsWarning, check_units, infer_units

    if given is not None:
        given = check_units(given)
        if stated is not None and check_units(stated) != given:
            warnings.warn(f"{path}: the file says its coordinates are in {stated}, but units={given!r} was "
                          f"given; using {given}", UnitsWarning, stacklevel=3)
        return given
    if stated is not None:
        try:
            return check_units(stated)
        except ValueError:
            raise ShapeFileError(path, f"the file states units {stated!r}, which shapeot does not know; "
                                       "give the units explicitly (units='mm', --units mm)") from None
    return infer_units(points, path)


def read_file(path: str, label: int | str | None = None, *, smooth: float = 0.0, n_points: int | None = None,
              method: str = "marching_cubes", name: str | None = None, units: str | None = None) -> Shape:
    """One shape from the file ``path`` (not a folder); the arguments are those of
    :func:`shapeot.shapes.io.load`, which documents them."""
    label = check_label(label)
    _check_options(smooth, n_points, method)
    if units is not None:
        from .units import check_units

        units = check_units(units)
    fmt = detect_format(path)
    check_readable(path)
    display = name if name is not None else os.path.basename(path)
    if fmt in SCAN_FORMATS:
        from .scans import extract_surface, read_label_volume

        volume = read_label_volume(path, fmt)
        points, faces, found = extract_surface(path, volume, label, smooth=smooth, method=method)
        try:
            shape = Shape(points, faces, name=display, source=Source(path, label if label is not None else found.value),
                          units=_units_of(path, points, volume.units, units))
            shape = _clean(shape)
        except ShapeError as exc:
            raise ShapeFileError(path, f"label {found}: {exc}") from exc
        if n_points is not None:
            shape = shape.decimate(int(n_points))
        return shape

    from .meshes import read_mesh

    raw = read_mesh(path, fmt)
    points = np.asarray(raw.points)
    if points.size == 0:
        raise ShapeFileError(path, "holds no points (an empty surface)")
    if points.ndim != 2 or points.shape[1] != 3:
        raise ShapeFileError(path, f"points must be 3D; the file holds an array of shape {points.shape}")
    if not np.isfinite(points).all():
        bad = int((~np.isfinite(points).all(axis=1)).sum())
        raise ShapeFileError(path, f"{bad} vertices have NaN or infinite coordinates")
    faces = raw.faces
    if faces is not None and len(faces):
        faces = np.asarray(faces, dtype=np.int64)
        if faces.min() < 0 or faces.max() >= len(points):
            raise ShapeFileError(
                path, f"face indices range over [{faces.min()}, {faces.max()}] but there are {len(points)} vertices"
            )
    from .geometry import clean_mesh

    meta = dict(raw.meta)
    stated = meta.pop("units", None)
    try:
        pts, faces, data = clean_mesh(points, faces, raw.point_data)
        if faces is not None and len(faces) == 0:
            raise ShapeError("every triangle is degenerate: an empty surface")
        return Shape(pts, faces, name=display, source=Source(path, None), point_data=data, meta=meta,
                     units=_units_of(path, pts, stated, units))
    except ShapeError as exc:
        raise ShapeFileError(path, str(exc)) from exc


def _clean(shape: Shape) -> Shape:
    from .geometry import clean_mesh

    pts, faces, data = clean_mesh(shape.points, shape.faces, shape.point_data)
    return Shape(pts, faces, None, shape.name, shape.units, shape.source, data, shape.meta)


def list_labels(path: str | os.PathLike) -> list:
    """The non-zero labels of a label map, with voxel counts, volumes and stored names.

    Parameters
    ----------
    path : str or PathLike
        A NIfTI, MGH/MGZ, NRRD / ``.seg.nrrd`` or MetaImage label map.

    Returns
    -------
    list of Label
        Sorted by layer then value; ``Label.name`` is set where the file carries names.

    Raises
    ------
    ShapeFileError
        If the file is not a readable label map (a mesh file included).
    """
    from .scans import label_table, read_label_volume

    path = os.fspath(path)
    fmt = detect_format(path)
    check_readable(path)
    if fmt not in SCAN_FORMATS:
        raise ShapeFileError(path, f"is a surface file ({fmt}), not a label map")
    return label_table(read_label_volume(path, fmt))
