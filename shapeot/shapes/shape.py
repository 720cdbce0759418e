"""The :class:`Shape` type: a triangle mesh or a point cloud with a probability measure on it."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from functools import cached_property
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from . import geometry
from .errors import ShapeError

__all__ = ["Shape", "Source"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Source(NamedTuple):
    """Where a Shape came from: the file and, for a label map, the label (value or name)."""

    path: str
    label: int | str | None = None


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only copy, so a Shape never shares writable memory with its caller."""
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Shape:
    """A surface (triangle mesh) or a point cloud, with a probability measure on its points.

    A Shape is immutable: its arrays are read-only and every operation returns a new Shape.

    Parameters
    ----------
    points : (N, 3) float array
        Vertex positions in ``units`` (mm by default), in RAS world coordinates when read from
        a file (see :mod:`shapeot.shapes.io`). Stored as float64.
    faces : (F, 3) int array or None, default: None
        Triangles (vertex indices in [0, N)), stored as int64. None for a point cloud.
    weights : (N,) float array or None, default: None
        Non-negative mass of each point. None means the vertex areas (one third of the area of
        every incident triangle) for a mesh, uniform for a point cloud. Always normalised to
        sum 1.
    name : str, default: ""
        A display name (the file name for a loaded shape).
    units : str, default: "mm"
        Length unit of ``points``: "mm", "cm", "m" or "um" (:mod:`shapeot.shapes.units`).
        Shapes in different units are never mixed; convert with :meth:`to_units`.
    source : Source or None, default: None
        The file (and label) the shape was read from.
    point_data : mapping of str to (N, ...) arrays, default: empty
        Per-vertex arrays (for example a displacement ``(N, 3)`` in mm), carried through
        formats that can hold them (VTK, VTP, GIfTI, PLY).
    meta : mapping of str to any, default: empty
        Format-specific facts needed to write the file back faithfully (for example the
        FreeSurfer ``volume_info``).

    Raises
    ------
    ShapeError
        If the points are not an (N, 3) finite array with N >= 1, if a face index is out of
        range, or if the weights are invalid. ``ShapeError`` is a ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> tet = Shape(np.eye(4, 3), np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))
    >>> tet.is_closed, round(float(tet.weights.sum()), 12)
    (True, 1.0)
    """

    points: np.ndarray
    faces: np.ndarray | None = None
    weights: np.ndarray | None = None
    name: str = ""
    units: str = "mm"
    source: Source | None = None
    point_data: Mapping[str, np.ndarray] = dataclasses.field(default_factory=lambda: _EMPTY)
    meta: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # the dataclass is frozen; this is the documented escape hatch
        pts = np.asarray(self.points)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ShapeError(f"points must be an (N, 3) array of 3D coordinates; got shape {pts.shape}")
        if len(pts) == 0:
            raise ShapeError("the shape is empty (0 points)")
        if not np.issubdtype(pts.dtype, np.number):
            raise ShapeError(f"points must be numbers; got dtype {pts.dtype}")
        pts = pts.astype(np.float64)
        if not np.isfinite(pts).all():
            bad = np.flatnonzero(~np.isfinite(pts).all(axis=1))
            raise ShapeError(f"{len(bad)} point(s) have NaN or infinite coordinates (first: index {bad[0]})")
        set_(self, "points", _frozen(pts))
        from .units import check_units

        try:
            set_(self, "units", check_units(self.units))
        except ValueError as exc:
            raise ShapeError(str(exc)) from None

        if self.faces is not None:
            f = np.asarray(self.faces)
            if f.ndim != 2 or f.shape[1] != 3:
                raise ShapeError(f"faces must be an (F, 3) array of triangles; got shape {f.shape}")
            if f.size and not np.issubdtype(f.dtype, np.integer):
                if not np.all(np.mod(f, 1) == 0):
                    raise ShapeError("face indices must be integers")
            f = f.astype(np.int64)
            if f.size and (f.min() < 0 or f.max() >= len(pts)):
                raise ShapeError(
                    f"face indices must lie in [0, {len(pts) - 1}]; got [{f.min()}, {f.max()}]"
                )
            set_(self, "faces", _frozen(f))

        set_(self, "weights", _frozen(self._checked_weights(pts)))

        data = {}
        for key, value in dict(self.point_data).items():
            value = np.asarray(value)
            if value.ndim == 0 or len(value) != len(pts):
                raise ShapeError(
                    f"point_data[{key!r}] must have one entry per point ({len(pts)}); "
                    f"got shape {value.shape}"
                )
            data[str(key)] = _frozen(value)
        set_(self, "point_data", MappingProxyType(data))
        set_(self, "meta", MappingProxyType(dict(self.meta)))
        if self.source is not None and not isinstance(self.source, Source):
            src = self.source
            set_(self, "source", Source(*src) if isinstance(src, tuple) else Source(os.fspath(src)))

    def _checked_weights(self, pts: np.ndarray) -> np.ndarray:
        if self.weights is None:
            if self.faces is not None and len(self.faces):
                w = geometry.vertex_areas(pts, self.faces)
            else:
                w = np.ones(len(pts))
        else:
            w = np.asarray(self.weights, dtype=np.float64)
            if w.shape != (len(pts),):
                raise ShapeError(f"weights must have shape ({len(pts)},); got {w.shape}")
            if not np.isfinite(w).all() or (w < 0).any():
                raise ShapeError("weights must be finite and non-negative")
        total = w.sum()
        if not total > 0:
            raise ShapeError("the shape has zero total weight (all triangles are degenerate?)")
        return w / total

    # ----------------------------------------------------------------------------- properties
    @property
    def n_points(self) -> int:
        """Number of points N."""
        return len(self.points)

    @property
    def is_mesh(self) -> bool:
        """True for a triangle mesh, False for a point cloud."""
        return self.faces is not None

    @cached_property
    def diameter(self) -> float:
        """Largest distance between two points, in ``units`` (exact, via the convex hull)."""
        return geometry.diameter(self.points)

    @cached_property
    def is_closed(self) -> bool:
        """True when every edge borders exactly two triangles (a watertight surface)."""
        return geometry.is_closed(self.faces)

    @cached_property
    def area(self) -> float:
        """Total surface area in ``units``^2 (0 for a point cloud)."""
        if self.faces is None:
            return 0.0
        return float(geometry.triangle_areas(self.points, self.faces).sum())

    # ----------------------------------------------------------------------------- new shapes
    def replace(self, **changes: Any) -> Shape:
        """A copy with some fields changed (validated again).

        Changing ``points`` or ``faces`` without giving ``weights`` recomputes the default
        weights (vertex areas or uniform).
        """
        if ("points" in changes or "faces" in changes) and "weights" not in changes:
            changes["weights"] = None
        return dataclasses.replace(self, **changes)

    def with_points(self, points: np.ndarray, **changes: Any) -> Shape:
        """The same connectivity on new vertex positions (e.g. a warped surface).

        Parameters
        ----------
        points : (N, 3) float array
            New positions, one per existing point (mm).
        **changes
            Other fields to change (``name``, ``point_data``, ...).
        """
        points = np.asarray(points)
        if points.shape != self.points.shape:
            raise ShapeError(f"expected points of shape {self.points.shape}; got {points.shape}")
        return self.replace(points=points, **changes)

    def to_units(self, units: str) -> Shape:
        """The same shape with its coordinates converted to ``units`` ("mm", "cm", "m", "um").

        The points are scaled, and so are the point arrays that are lengths (``displacement``
        and ``mode``, (N, 3)); other point data is kept as it is. Weights are unchanged.
        """
        from .units import LENGTH_ARRAYS, check_units, unit_factor

        units = check_units(units)
        if units == self.units:
            return self
        k = unit_factor(self.units, units)
        data = {key: (np.asarray(v) * k if key in LENGTH_ARRAYS else v) for key, v in self.point_data.items()}
        return Shape(self.points * k, self.faces, self.weights, self.name, units, self.source, data, self.meta)

    def decimate(self, n_points: int, progress=None) -> Shape:
        """A coarser version with about ``n_points`` points.

        Meshes use quadric-error decimation (VTK's ``vtkQuadricDecimation``) when VTK is
        installed, and vertex clustering on a regular grid otherwise; point clouds use vertex
        clustering. Point data is carried over from the nearest original point.

        Parameters
        ----------
        n_points : int
            Target number of points (the result is within a few percent of it for meshes).
        progress : callable(fraction), optional
            Called as VTK's decimation proceeds (it may raise to cancel).

        Returns
        -------
        Shape
            A new shape with default weights; ``source`` and ``meta`` are kept.
        """
        from .decimate import decimate_arrays

        if isinstance(n_points, bool) or not isinstance(n_points, (int, float, np.number)) \
                or not np.isfinite(n_points) or n_points < 1:
            raise ShapeError(f"n_points must be a number >= 1; got {n_points!r}")
        if n_points >= self.n_points:
            return self
        pts, faces, nearest = decimate_arrays(self.points, self.faces, int(n_points), progress)
        data = {k: np.asarray(v)[nearest] for k, v in self.point_data.items()}
        return Shape(pts, faces, None, self.name, self.units, self.source, data, self.meta)

    # ----------------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the shape to a mesh file; the format follows the extension.

        The file is written to a hidden staging folder beside it and then linked into place
        exclusively (:mod:`shapeot.core.outputs`), so a failure never leaves a half-written
        file and an existing file is replaced only with ``overwrite``. See
        :func:`shapeot.shapes.writing.save`; read a shape with :func:`shapeot.load`.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        ShapeFileError
            If the format is unknown or cannot hold this shape (e.g. STL for a point cloud).
        """
        from .writing import save

        save(self, path, overwrite=overwrite)

    def to_pyvista(self):
        """This shape as a ``pyvista.PolyData`` (pyvista is imported here, not at module load).

        Point data is attached as point arrays; a point cloud gets one vertex cell per point.
        """
        try:
            import pyvista as pv
        except ImportError as exc:  # pragma: no cover - depends on the install
            from .errors import MissingDependencyError

            raise MissingDependencyError(
                "Shape.to_pyvista needs pyvista: pip install 'shapeot[gui]' (or pip install pyvista)"
            ) from exc
        pts = np.array(self.points)
        if self.faces is None:
            mesh = pv.PolyData(pts)
        else:
            cells = np.hstack([np.full((len(self.faces), 1), 3), self.faces]).ravel()
            mesh = pv.PolyData(pts, faces=cells)
        for key, value in self.point_data.items():
            mesh.point_data[key] = np.array(value)
        return mesh

    def __repr__(self) -> str:
        kind = f"{len(self.faces)} faces" if self.faces is not None else "point cloud"
        extra = f", point_data={list(self.point_data)}" if self.point_data else ""
        return f"Shape({self.name!r}, {self.n_points} points, {kind}, units={self.units!r}{extra})"
