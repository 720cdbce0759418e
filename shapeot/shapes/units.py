"""Length units of shapes: the ones shapeot knows, inference from a shape's size, and warnings.

A :class:`~shapeot.shapes.Shape` carries its ``units``. They come from the file where the
format says so (NIfTI ``xyzt_units``, NRRD ``space units``, the ``UNITS`` field that shapeot
writes in .vtk/.vtp files; GIfTI and FreeSurfer surfaces are millimetres by definition), from the
caller (``load(path, units="m")``, ``--units m``), or are inferred from the size of the shape with
a :class:`UnitsWarning`: anatomy measured in millimetres spans more than 1 unit and less than
10,000, so a brain whose bounding box is 0.17 across is taken to be in metres. Mixing units is
an error everywhere (``match``, ``register``, ``template``); convert with
:meth:`Shape.to_units <shapeot.shapes.Shape.to_units>` or ``--to-units``.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["UNITS", "UnitsWarning", "PrecisionWarning", "check_units", "unit_factor", "infer_units",
           "SMALLEST_MM_EXTENT", "LARGEST_MM_EXTENT", "LENGTH_ARRAYS", "float32_loss"]

#: Known units and their length in millimetres.
UNITS: dict[str, float] = {"um": 1e-3, "mm": 1.0, "cm": 10.0, "m": 1000.0}
_ALIASES = {"µm": "um", "micron": "um", "microns": "um", "micrometre": "um", "micrometer": "um",
            "millimetre": "mm", "millimeter": "mm", "millimeters": "mm", "millimetres": "mm",
            "centimetre": "cm", "centimeter": "cm", "meter": "m", "metre": "m", "meters": "m", "metres": "m"}

#: Point arrays that hold lengths: scaled by :meth:`Shape.to_units`.
LENGTH_ARRAYS = ("displacement", "mode")

#: Bounding-box diagonals (in the file's numbers) outside [SMALLEST, LARGEST] are not plausible
#: for anatomy in millimetres: below, the numbers are taken as metres; above, as micrometres.
SMALLEST_MM_EXTENT = 1.0
LARGEST_MM_EXTENT = 1.0e4


class UnitsWarning(UserWarning):
    """The units of a shape were inferred from its size (the file did not say); check them."""


class PrecisionWarning(UserWarning):
    """A file format would lose precision (float32 coordinates far from the origin)."""


def check_units(units: str) -> str:
    """The canonical name of a unit ("mm", "m", "cm", "um"); aliases such as "metre" are accepted.

    Raises
    ------
    ValueError
        For a unit shapeot does not know, listing those it knows.
    """
    if not isinstance(units, str):
        raise ValueError(f"units must be a string such as 'mm'; got {type(units).__name__}")
    key = units.strip()
    key = _ALIASES.get(key.lower(), key)
    if key not in UNITS:
        raise ValueError(f"unknown units {units!r}; shapeot knows {', '.join(UNITS)}")
    return key


def unit_factor(from_units: str, to_units: str) -> float:
    """The number to multiply coordinates in ``from_units`` by to get ``to_units``."""
    return UNITS[check_units(from_units)] / UNITS[check_units(to_units)]


def infer_units(points: np.ndarray, where: str) -> str:
    """Units of points whose file does not say: "mm" unless the size says otherwise (then warn).

    Parameters
    ----------
    points : (N, 3) array
    where : str
        The file, for the warning.
    """
    pts = np.asarray(points, dtype=np.float64)
    extent = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0))) if len(pts) else 0.0
    if 0.0 < extent < SMALLEST_MM_EXTENT:
        warnings.warn(f"{where}: the file does not state its units and the shape is only {extent:.3g} across, "
                      "so it is taken to be in metres (units='m'); if it really is in millimetres, say so "
                      "(load(..., units='mm'), --units mm)", UnitsWarning, stacklevel=3)
        return "m"
    if extent > LARGEST_MM_EXTENT:
        warnings.warn(f"{where}: the file does not state its units and the shape is {extent:.3g} across, "
                      "so it is taken to be in micrometres (units='um'); if it really is in millimetres, say so "
                      "(load(..., units='mm'), --units mm)", UnitsWarning, stacklevel=3)
        return "um"
    return "mm"


def float32_loss(points: np.ndarray) -> float:
    """Largest coordinate change when ``points`` are stored as float32, relative to the shape's size."""
    pts = np.asarray(points, dtype=np.float64)
    if not len(pts):
        return 0.0
    err = float(np.abs(pts.astype(np.float32).astype(np.float64) - pts).max())
    extent = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
    if extent == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / extent
