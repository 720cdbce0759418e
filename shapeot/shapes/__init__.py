"""Shapes and their files: the :class:`Shape` type, readers and writers, label-map surfaces.

Coordinates are RAS millimetres throughout (NRRD and MetaImage, stored in LPS, are converted);
see ``docs/shapes.md`` and :mod:`shapeot.shapes.io` for formats and conventions.

Importing this package loads numpy only; file readers (meshio, nibabel, VTK, pyvista) are
imported when a file of their format is first read or written. :mod:`shapeot.shapes.synthetic`
(known random diffeomorphisms for tests and the sample cohort) is imported on first use.
Every output file goes through :mod:`shapeot.core.outputs` (checked first, staged, committed
exclusively and all at once); units are described in :mod:`shapeot.shapes.units`.
"""
from __future__ import annotations

from .errors import (
    LabelNotFoundError,
    MissingDependencyError,
    ShapeError,
    ShapeFileError,
    UnsupportedFormatError,
)
from .freesurfer import label_name, label_value, load_subject
from .io import as_shape, list_labels, load
from .overlays import Overlay, read_overlay, write_overlay
from .scans import Label
from .shape import Shape, Source
from .units import UNITS, PrecisionWarning, UnitsWarning
from .writing import save

__all__ = [
    "Shape",
    "Source",
    "Label",
    "load",
    "save",
    "list_labels",
    "as_shape",
    "load_subject",
    "label_value",
    "label_name",
    "Overlay",
    "read_overlay",
    "write_overlay",
    "UNITS",
    "UnitsWarning",
    "PrecisionWarning",
    "ShapeError",
    "ShapeFileError",
    "UnsupportedFormatError",
    "LabelNotFoundError",
    "MissingDependencyError",
]
