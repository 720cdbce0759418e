"""Write shapes to mesh files: the format follows the name, the file goes through the one safe writer.

:func:`check_output_path` says, before any work, whether a path can be written (its format, and
whether that format can hold the shape); :func:`write_shape` writes a staged path;
:func:`save` does both through :mod:`shapeot.core.outputs` (staged, exclusive, atomic).
FreeSurfer surfaces are written in tkr-RAS (their ``volume_info``'s ``c_ras`` subtracted).
"""
from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

import numpy as np

from shapeot.core.formats import SCAN_FORMATS

from .errors import ShapeFileError, UnsupportedFormatError
from .filetypes import detect_format

if TYPE_CHECKING:
    from .shape import Shape

__all__ = ["check_output_path", "write_shape", "save", "FLOAT32_TOLERANCE"]


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
