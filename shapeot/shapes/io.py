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

This module is the dispatch: :func:`load` opens a FreeSurfer subject folder
(:mod:`.freesurfer`) or reads a file (:mod:`.reading`); :func:`save` is :mod:`.writing`'s.
"""
from __future__ import annotations

import os
from typing import Literal

from .errors import ShapeFileError
from .filetypes import detect_format
from .reading import check_label, list_labels, read_file
from .shape import Shape
from .writing import check_output_path, save, write_shape

__all__ = ["load", "list_labels", "save", "detect_format", "as_shape", "check_label", "check_output_path",
           "write_shape"]


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
    return read_file(path, label, smooth=smooth, n_points=n_points, method=method, name=name, units=units)


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
