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
"""
from __future__ import annotations

import os
import re
import secrets
from typing import Literal

import numpy as np

from .errors import ShapeError, ShapeFileError, UnsupportedFormatError
from .shape import Shape, Source

__all__ = ["load", "list_labels", "save", "detect_format"]

_SUFFIXES = [  # longest first: ".seg.nrrd" before ".nrrd", ".nii.gz" before ".gz"
    (".gii.gz", "gifti_gz"), (".nii.gz", "nifti"), (".seg.nrrd", "nrrd"),
    (".vtk", "vtk"), (".vtp", "vtp"), (".stl", "stl"), (".ply", "ply"), (".obj", "obj"),
    (".off", "off"), (".gii", "gifti"), (".nii", "nifti"), (".mgz", "mgh"), (".mgh", "mgh"),
    (".nrrd", "nrrd"), (".nhdr", "nrrd"), (".mha", "metaimage"), (".mhd", "metaimage"),
]
# FreeSurfer surfaces have no extension: lh.pial, rh.white, lh.pial.T1, lh.sphere.reg, ...
_FREESURFER_NAME = re.compile(r"^(lh|rh)\.[A-Za-z0-9_.\-]+$")
_SCANS = {"nifti", "mgh", "nrrd", "metaimage"}


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
    lower = name.lower()
    for suffix, fmt in _SUFFIXES:
        if lower.endswith(suffix):
            return fmt
    if _FREESURFER_NAME.match(name):
        return "freesurfer"
    if not for_writing and os.path.isfile(path):
        from .meshes import FREESURFER_MAGIC

        with open(path, "rb") as fh:
            if fh.read(3) == FREESURFER_MAGIC:
                return "freesurfer"
    known = ", ".join(s for s, _ in _SUFFIXES) + ", lh.*/rh.* (FreeSurfer)"
    raise UnsupportedFormatError(path, f"unsupported file type; shapeot reads {known}")


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ShapeFileError(path, "is a folder, not a file")
    if os.path.getsize(path) == 0:
        raise ShapeFileError(path, "is empty (0 bytes)")


def load(
    path: str | os.PathLike,
    label: int | str | None = None,
    *,
    smooth: float = 0.0,
    n_points: int | None = None,
    method: Literal["marching_cubes", "surface_nets"] = "marching_cubes",
    name: str | None = None,
) -> Shape:
    """Read a mesh, a point cloud, or the surface of one label of a segmented scan.

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

    Returns
    -------
    Shape
        Points in RAS mm, ``source = Source(path, label)``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ShapeFileError
        (a ``ValueError``) for a corrupt or empty file, an unsupported extension
        (:class:`UnsupportedFormatError`), a label not in the scan (:class:`LabelNotFoundError`,
        listing the labels present), or invalid geometry (2D points, NaN, bad face indices).
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
    fmt = detect_format(path)
    _check_readable(path)
    display = name if name is not None else os.path.basename(path)
    if fmt in _SCANS:
        from .scans import extract_surface, read_label_volume

        volume = read_label_volume(path, fmt)
        points, faces, found = extract_surface(path, volume, label, smooth=smooth, method=method)
        try:
            shape = Shape(points, faces, name=display, source=Source(path, label if label is not None else found.value))
            shape = _clean(shape)
        except ShapeError as exc:
            raise ShapeFileError(path, f"label {found}: {exc}") from exc
        if n_points is not None:
            shape = shape.decimate(n_points)
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

    try:
        pts, faces, data = clean_mesh(points, faces, raw.point_data)
        if faces is not None and len(faces) == 0:
            raise ShapeError("every triangle is degenerate: an empty surface")
        return Shape(pts, faces, name=display, source=Source(path, None), point_data=data, meta=raw.meta)
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
    if fmt not in _SCANS:
        raise ShapeFileError(path, f"is a surface file ({fmt}), not a label map")
    return label_table(read_label_volume(path, fmt))


def save(shape: Shape, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write a shape to a surface file, atomically; the format follows the extension.

    The data goes to a temporary file in the target folder, which is then renamed over
    ``path`` (``os.replace``), so readers never see a half-written file and a failure leaves
    nothing behind.

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
        cloud in STL or FreeSurfer).
    """
    from .meshes import MESH_FORMATS, write_mesh

    path = os.fspath(path)
    fmt = detect_format(path, for_writing=True)
    if fmt in _SCANS:
        raise UnsupportedFormatError(path, f"{fmt} is a label-map format; save a surface as .vtp, .ply, .gii, ...")
    holds_clouds, holds_data = MESH_FORMATS[fmt]
    if shape.faces is None and not holds_clouds:
        raise ShapeFileError(path, f"{fmt.upper()} files need triangles; this shape is a point cloud")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{path}: folder {folder} does not exist")
    base = os.path.basename(path)
    # Same folder (so os.replace is atomic) and a hidden, unique name; the writers get the
    # format explicitly. Not tempfile.mkstemp: its 0600 mode would end up on the saved file,
    # while open(..., "x") gives the usual permissions (umask) and still never clobbers.
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.part")
    open(tmp, "xb").close()
    try:
        write_mesh(tmp, fmt, np.asarray(shape.points), shape.faces, dict(shape.point_data) if holds_data else {},
                   dict(shape.meta))
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, (ShapeFileError, FileExistsError, ImportError)) or not isinstance(exc, Exception):
            raise
        raise ShapeFileError(path, f"could not be written as {fmt}: {type(exc).__name__}: {exc}") from exc

