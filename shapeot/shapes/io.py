"""Load shapes from files, list the labels of a scan, save shapes atomically.

Formats are chosen by extension:

=====================  ==================================  =====================================
extension              format                              reads / writes
=====================  ==================================  =====================================
.vtk / .vtp            VTK legacy / XML polydata           mesh, cloud, point data (VTP: VTK)
.stl                   STL                                 mesh
.ply                   PLY                                 mesh, cloud, point data
.obj / .off            Wavefront OBJ / OFF                 mesh, cloud
.gii, .gii.gz          GIfTI                               mesh, cloud, point data
lh.pial, rh.white ...  FreeSurfer surface                  mesh
.nii, .nii.gz          NIfTI label map                     read only: surface of one label
.mgz, .mgh             FreeSurfer volume label map         read only: surface of one label
.nrrd, .seg.nrrd,      NRRD / Slicer segmentation          read only: surface of one label
.nhdr
.mha, .mhd             MetaImage label map                 read only: surface of one label
=====================  ==================================  =====================================

All coordinates are RAS millimetres (see :mod:`shapeot.shapes.scans` for the conversion of LPS
formats). FreeSurfer surfaces store tkr-RAS; when the file carries valid ``volume_info``, its
``c_ras`` is added on reading (giving scanner RAS, the frame of the subject's volumes) and
subtracted again on writing. Other surface formats are read as stored.

Readers check what they read against what the file promised (vertex and face counts of the
header, finite coordinates, faces present) and raise :class:`ShapeFileError` naming the file and
the defect. Units come from the file, the ``units`` argument, or are inferred with a warning
(:mod:`shapeot.shapes.units`); coordinates are never rescaled on reading. Writing goes through
:mod:`shapeot.core.outputs` (staged, exclusive, atomic).
"""
from __future__ import annotations

import os
import warnings
from typing import Literal

import numpy as np

from shapeot.core.formats import FREESURFER_NAME, SCAN_FORMATS, SUFFIX_FORMATS, format_of

from .errors import ShapeError, ShapeFileError, UnsupportedFormatError
from .shape import Shape, Source

__all__ = ["load", "list_labels", "save", "detect_format", "as_shape", "check_label", "check_output_path"]




def detect_format(path: str | os.PathLike, *, for_writing: bool = False) -> str:
    """The format of a file, from its name (and, for FreeSurfer surfaces, its first bytes).

    Parameters
    ----------
    path : str or PathLike
    for_writing : bool, default: False
        When reading, a file with an unknown name is recognised as a FreeSurfer surface by its
        magic number; when writing there are no bytes to look at.

    Returns
    -------
    str
        One of "vtk", "vtp", "stl", "ply", "obj", "off", "gifti", "gifti_gz", "freesurfer",
        "nifti", "mgh", "nrrd", "metaimage".

    Raises
    ------
    UnsupportedFormatError
        If the name matches no format shapeot knows.
    """
    name = os.path.basename(os.fspath(path))
    fmt = format_of(name)
    if fmt is not None:
        return fmt
    if FREESURFER_NAME.match(name):
        if not for_writing and os.path.isfile(path):
            with open(path, "rb") as fh:
                if fh.read(3) == b"\xff\xff\xff":  # the magic number of "new" morph files
                    raise ShapeFileError(path, "is FreeSurfer per-vertex data (thickness, curv, sulc), not a surface: "
                                         "read it with shapeot.shapes.read_overlay(path, surface), or pass it to "
                                         "`shapeot register --overlay`")
        return "freesurfer"
    if not for_writing and os.path.isfile(path):
        from .meshes import FREESURFER_MAGIC

        with open(path, "rb") as fh:
            if fh.read(3) == FREESURFER_MAGIC:
                return "freesurfer"
    known = ", ".join(s for s, _ in SUFFIX_FORMATS) + ", lh.*/rh.* (FreeSurfer)"
    raise UnsupportedFormatError(path, f"unsupported file type; shapeot reads {known}")


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ShapeFileError(path, "is a folder, not a file")
    if os.path.getsize(path) == 0:
        raise ShapeFileError(path, "is empty (0 bytes)")


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


def load(
    path: str | os.PathLike,
    label: int | str | None = None,
    *,
    smooth: float = 0.0,
    n_points: int | None = None,
    method: Literal["marching_cubes", "surface_nets"] = "marching_cubes",
    name: str | None = None,
    units: str | None = None,
    surf: str | None = None,
) -> Shape:
    """Read a mesh, a point cloud, the surface of one label of a segmented scan, or a surface
    of a FreeSurfer subject folder.

    Meshes are cleaned on reading: polygons are split into triangles, duplicate vertices are
    merged, degenerate triangles and vertices that no triangle uses are dropped; NaN or
    infinite coordinates and out-of-range face indices are rejected. A file that needs no
    cleaning keeps its vertex order.

    Parameters
    ----------
    path : str or PathLike
        The file; its format follows the extension (see :mod:`shapeot.shapes.io`).
    label : int, str or None, default: None
        For label maps: the label value, or its name where the file stores names (Slicer
        ``.seg.nrrd``). None is allowed when the map holds a single label. Ignored for meshes.
    smooth : float, default: 0.0
        Label maps only: Gaussian smoothing (standard deviation, mm) of the mask before
        extraction.
    n_points : int or None, default: None
        Label maps only: decimate the surface to about this many vertices.
    method : {"marching_cubes", "surface_nets"}, default: "marching_cubes"
        Label maps only: scikit-image marching cubes, or VTK surface nets.
    name : str or None, default: None
        Name of the shape; the file name by default.
    surf : str or None, default: None
        FreeSurfer subject folders only: the surface of ``surf/`` to read (default "lh.pial"),
        see :func:`shapeot.shapes.freesurfer.load_subject`.
    units : str or None, default: None
        Units of the coordinates in the file ("mm", "cm", "m", "um"). None: what the file
        states (NIfTI ``xyzt_units``, NRRD ``space units``, the ``UNITS`` field of shapeot's
        .vtk/.vtp; GIfTI and FreeSurfer are mm), else inferred from the shape's size with a
        :class:`~shapeot.shapes.units.UnitsWarning` (a shape less than 1 across is taken to be in
        metres). Coordinates are never rescaled on reading.

    Returns
    -------
    Shape
        Points in RAS coordinates, ``units`` as above, ``source = Source(path, label)``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ShapeFileError
        (a ``ValueError``) for a corrupt, truncated or empty file, an unsupported extension
        (:class:`UnsupportedFormatError`), a label not in the scan (:class:`LabelNotFoundError`,
        listing the labels present), or invalid geometry (2D points, NaN, bad face indices,
        fewer points or faces than the header promised).
    ValueError
        For invalid arguments: a label that is not a whole number, ``smooth`` < 0 or NaN,
        ``n_points`` < 1, an unknown ``method`` or ``units``.
    MissingDependencyError
        If the format needs VTK (``.vtp``, surface nets) and VTK is not installed.

    Examples
    --------
    >>> import shapeot
    >>> lh = shapeot.load("sample_meshes/fsaverage5_lh_pial.gii")  # doctest: +SKIP
    >>> lh.n_points                                                 # doctest: +SKIP
    10242
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        from .freesurfer import is_subject_dir, load_subject

        if is_subject_dir(path):
            return load_subject(path, surf or "lh.pial", name=name)
        raise ShapeFileError(path, "is a folder; a FreeSurfer subject folder holds surf/ (give a file, or a subject)")
    label = check_label(label)
    _check_options(smooth, n_points, method)
    if units is not None:
        from .units import check_units

        units = check_units(units)
    fmt = detect_format(path)
    _check_readable(path)
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
    _check_readable(path)
    if fmt not in SCAN_FORMATS:
        raise ShapeFileError(path, f"is a surface file ({fmt}), not a label map")
    return label_table(read_label_volume(path, fmt))


def check_output_path(path: str | os.PathLike, shape: Shape | None = None) -> str:
    """The mesh format that ``path`` would be written in; raises now if it cannot be written.

    Checks the extension (a mesh format, not a label map) and, when ``shape`` is given, that the
    format can hold it (triangles for STL/FreeSurfer, millimetres for GIfTI/FreeSurfer).

    Raises
    ------
    UnsupportedFormatError, ShapeFileError
    """
    from .meshes import MESH_FORMATS

    fmt = detect_format(path, for_writing=True)
    if fmt in SCAN_FORMATS:
        raise UnsupportedFormatError(path, f"{fmt} is a label-map format; save a surface as .vtp, .ply, .gii, ...")
    if fmt == "vtp":  # said before the work, not after a registration (a core install has no VTK)
        from .vtkio import import_vtk

        import_vtk(f"writing {os.fspath(path)} (.vtp; .vtk, .ply and .gii need no VTK)")
    if shape is not None:
        holds_clouds, _ = MESH_FORMATS[fmt]
        if shape.faces is None and not holds_clouds:
            raise ShapeFileError(path, f"{fmt.upper()} files need triangles; this shape is a point cloud")
        if fmt in _MM_ONLY and shape.units != "mm":
            raise ShapeFileError(path, f"{_MM_ONLY[fmt]} coordinates are millimetres by definition and this shape is "
                                       f"in {shape.units}; convert it first (shape.to_units('mm'), --to-units mm) "
                                       "or use .vtp/.vtk/.ply")
    return fmt


_MM_ONLY = {"gifti": "GIfTI", "gifti_gz": "GIfTI", "freesurfer": "FreeSurfer"}
_FLOAT32 = {"gifti": "GIfTI", "gifti_gz": "GIfTI", "freesurfer": "FreeSurfer", "stl": "STL"}
#: Largest float32 rounding of a coordinate, relative to the shape's size, that is saved silently.
FLOAT32_TOLERANCE = 1e-5


def write_shape(shape: Shape, path: str | os.PathLike, fmt: str, *, display: str | os.PathLike | None = None) -> None:
    """Write ``shape`` to ``path`` (any name) in format ``fmt``: no staging, no existence check.

    Used by :func:`save` and the output writers on a staged temporary path. Warns
    (:class:`~shapeot.shapes.units.PrecisionWarning`) when a float32 format would move the
    vertices by more than ``FLOAT32_TOLERANCE`` of the shape's size.
    """
    from .meshes import MESH_FORMATS, write_mesh
    from .units import PrecisionWarning, float32_loss

    display = os.fspath(display if display is not None else path)
    _, holds_data = MESH_FORMATS[fmt]
    if fmt in _FLOAT32:
        loss = float32_loss(shape.points)
        if loss > FLOAT32_TOLERANCE:
            n_distinct = len(np.unique(np.asarray(shape.points, dtype=np.float32), axis=0))
            n_before = len(np.unique(np.asarray(shape.points), axis=0))
            warnings.warn(
                f"{display}: {_FLOAT32[fmt]} stores float32 coordinates, which moves vertices by up to "
                f"{loss:.2g} of the shape's size ({n_distinct} distinct vertices of {n_before} remain); "
                "use .vtp, .vtk or .ply (float64) to keep full precision", PrecisionWarning, stacklevel=3)
    meta = {**dict(shape.meta), "units": shape.units}
    try:
        write_mesh(os.fspath(path), fmt, np.asarray(shape.points), shape.faces,
                   dict(shape.point_data) if holds_data else {}, meta)
    except (ShapeFileError, ImportError):
        raise
    except Exception as exc:  # noqa: BLE001 - a writer's failure, named
        raise ShapeFileError(display, f"could not be written as {fmt}: {type(exc).__name__}: {exc}") from exc


def save(shape: Shape, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write a shape to a surface file, atomically; the format follows the extension.

    The data goes to a hidden staging folder beside ``path`` and is then linked into place
    (:class:`~shapeot.core.outputs.OutputSet`): readers never see a half-written file, a
    failure leaves nothing behind, and the file is created exclusively, so a file that exists
    (or appears while writing) is never replaced unless ``overwrite``. Permissions follow the
    umask.

    Parameters
    ----------
    shape : Shape
    path : str or PathLike
        Target file: .vtk, .vtp, .stl, .ply, .obj, .off, .gii, .gii.gz, or a FreeSurfer name
        (lh.pial, ...). Label-map formats cannot be written.
    overwrite : bool, default: False
        Replace an existing file. Off by default so that an input is never overwritten by
        accident.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ShapeFileError
        If the format is unknown, is a label-map format, or cannot hold this shape (a point
        cloud in STL or FreeSurfer, a shape not in mm in GIfTI or FreeSurfer).

    Warns
    -----
    PrecisionWarning
        When a float32 format (GIfTI, STL, FreeSurfer) would move vertices by more than 1e-5 of
        the shape's size (coordinates far from the origin).
    """
    from shapeot.core.outputs import single_output

    path = os.fspath(path)
    fmt = check_output_path(path, shape)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{path}: folder {folder} does not exist")
    with single_output(path, overwrite=overwrite) as tmp:
        write_shape(shape, tmp, fmt, display=path)


def as_shape(obj, name: str = "shape") -> Shape:
    """``obj`` if it is a Shape; the file it names if it is a path (loaded with :func:`load`).

    For the front of the verbs (``register``, ``match``, ``template``) so that
    ``shapeot.register("a.vtp", "b.vtp")`` works.

    Raises
    ------
    TypeError
        For anything else, naming the argument (``name``) and what was given.
    """
    if isinstance(obj, Shape):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return load(obj)
    raise TypeError(f"{name} must be a shapeot.Shape or the path of a mesh or label-map file; "
                    f"got {type(obj).__name__}")
