r"""A registration's deformation as a Slicer transform node that hardens onto the warped surface.

Which direction
---------------
A Slicer transform node holds a transform *to parent* (moves the node's data into the parent,
here world, frame: what "Harden transform" applies to models, markups and segmentations) and
its inverse *from parent* (what volume resampling needs: for each output voxel, where to read
the input). Displacement fields read from ITK/Elastix files are stored *from parent*; setting a
grid *to parent* instead, as here, makes hardening a model evaluate

.. math::  \phi(x) \approx x + \mathrm{trilinear}(u)(x), \qquad u(g) = \phi(g) - g
           \text{ at the grid nodes } g,

directly, with no iterative inversion (``vtkOrientedGridTransform`` inverts a grid by Newton
iterations when Slicer needs the other direction, to ~0.01 mm; ``GetInverseFlag()`` of the
node's from-parent transform is then true). The node's ``TransformToParent`` is the shapeot map
``Registration.deformation``: source space -> target space.

Why a grid, and how dense
-------------------------
Trilinear interpolation of an affine map is exact, so the pre-alignment costs nothing; the error
of the non-linear part in a cell of side h is about h^2/8 |D^2 u|, i.e. small once h is a
fraction of the narrowest kernel width of the deformation. A ``vtkThinPlateSplineTransform``
with the source vertices as landmarks would reproduce them exactly, but VTK solves its
(N+4) x (N+4) system by a Jacobi eigendecomposition (``vtkMath::JacobiN``) holding three dense
(N+4)^2 matrices (2.4 GB for the 10k vertices of a brain hemisphere), and evaluating it costs
O(N) per point, at every voxel when a volume is resampled. A grid costs one trilinear
interpolation per point and is what Slicer resamples volumes with. So:

1. a coarse field is evaluated with ``deformation.apply`` on a grid of about ``coarse_nodes``
   nodes covering the source's bounding box plus ``margin`` and interpolated onto the fine grid;
2. at every *corner of a fine cell holding a source vertex* the field is evaluated exactly, so
   hardening the source model only interpolates exact values;
3. the error at the source vertices is measured (interpolated minus ``deformation.apply``); while
   it exceeds ``tolerance`` (0.1 mm) the fine spacing is halved (step 2 again, about 8 N
   evaluations per round), down to ``min_spacing`` or ``max_nodes`` nodes.

The cost therefore grows with the number of source vertices, not with the volume of the box.
Away from the source surface the field is the coarse one: :class:`TransformReport` gives the
error measured at the source vertices *through the VTK transform that Slicer hardens with*, and
at random points of the box.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "GridGeometry",
    "TransformReport",
    "finest_width",
    "displacement_field",
    "grid_transform",
    "grid_transform_node",
    "linear_transform_node",
    "transform_points",
    "deformation_transform_node",
]

ProgressCallback = Callable[[float, str], "bool | None"]

_CORNERS = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=np.int64)  # (8, 3)


@dataclass(frozen=True)
class GridGeometry:
    """An axis-aligned grid in RAS millimetres.

    Attributes
    ----------
    origin : (3,) float64 array
        Position (mm) of node (0, 0, 0).
    spacing : float
        Node spacing h (mm), the same along the three axes.
    dims : (int, int, int)
        Number of nodes (ni, nj, nk) along x (R), y (A), z (S).
    """

    origin: np.ndarray
    spacing: float
    dims: tuple[int, int, int]

    @staticmethod
    def covering(lo: np.ndarray, hi: np.ndarray, spacing: float) -> "GridGeometry":
        """The grid of spacing ``spacing`` from ``lo`` that covers ``hi`` (both (3,) mm)."""
        lo = np.asarray(lo, dtype=np.float64)
        n = np.ceil((np.asarray(hi, dtype=np.float64) - lo) / spacing).astype(np.int64) + 1
        return GridGeometry(lo.copy(), float(spacing), tuple(int(v) for v in np.maximum(n, 2)))

    @property
    def n_nodes(self) -> int:
        return int(np.prod(self.dims))

    def positions(self, ijk: np.ndarray) -> np.ndarray:
        """(M, 3) positions (mm) of the nodes of integer indices ``ijk`` (M, 3)."""
        return self.origin + self.spacing * np.asarray(ijk, dtype=np.float64)

    def all_positions(self) -> np.ndarray:
        """(ni * nj * nk, 3) positions of every node, index i fastest (VTK's point order)."""
        axes = [self.origin[a] + self.spacing * np.arange(self.dims[a]) for a in range(3)]
        zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
        return np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)


@dataclass(frozen=True)
class TransformReport:
    """How the transform node represents the deformation, and how well.

    Attributes
    ----------
    kind : {"linear", "grid"}
    max_error_mm, mean_error_mm : float
        |hardened - deformation.apply| at the source vertices, through the node's transform to
        world (the transform "Harden transform" applies).
    far_max_error_mm : float
        The same at ``far_samples`` random points of the grid's box (grids; 0 for linear).
    spacing_mm : float or None
        Fine grid spacing h (grids).
    coarse_spacing_mm : float or None
        Spacing of the coarse evaluation filling the nodes away from the source vertices.
    dims : (int, int, int) or None
        Grid nodes along R, A, S.
    exact_nodes : int
        Nodes where the deformation was evaluated exactly (cell corners of source vertices).
    refinements : int
        Times the spacing was halved to meet the tolerance.
    """

    kind: str
    max_error_mm: float
    mean_error_mm: float
    far_max_error_mm: float = 0.0
    spacing_mm: float | None = None
    coarse_spacing_mm: float | None = None
    dims: tuple[int, int, int] | None = None
    exact_nodes: int = 0
    refinements: int = 0


def _check(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Report through :class:`shapeot.core.progress.Progress`: a False return cancels."""
    from shapeot.core.progress import as_progress

    as_progress(progress)(fraction, message)


def _evaluate(deformation, points: np.ndarray, progress: ProgressCallback | None, lo: float, hi: float,
              message: str, chunk: int = 4096) -> np.ndarray:
    """deformation.apply(points) in chunks, reporting progress in [lo, hi] and checking for cancel."""
    out = np.empty_like(points, dtype=np.float64)
    n = len(points)
    for start in range(0, n, chunk):
        _check(progress, lo + (hi - lo) * start / max(n, 1), message)
        out[start:start + chunk] = deformation.apply(points[start:start + chunk])
    _check(progress, hi, message)
    return out


def _trilinear(field: np.ndarray, geometry: GridGeometry, points: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of ``field`` (nk, nj, ni, 3) at ``points`` (M, 3) inside the grid."""
    f = (points - geometry.origin) / geometry.spacing
    i0 = np.clip(np.floor(f).astype(np.int64), 0, np.array(geometry.dims) - 2)
    t = f - i0
    out = np.zeros((len(points), field.shape[-1]))
    for corner in _CORNERS:
        idx = i0 + corner
        w = np.prod(np.where(corner == 1, t, 1.0 - t), axis=1)
        out += w[:, None] * field[idx[:, 2], idx[:, 1], idx[:, 0]]
    return out


def _upsample(coarse: np.ndarray, coarse_geometry: GridGeometry, fine: GridGeometry) -> np.ndarray:
    """The coarse field (nk, nj, ni, 3) interpolated (trilinearly) at every fine node, as float32.

    One z slab at a time, so the temporaries stay O(nj * ni).
    """
    from scipy.ndimage import map_coordinates

    ratio = fine.spacing / coarse_geometry.spacing
    ni, nj, nk = fine.dims
    jj, ii = np.meshgrid(np.arange(nj) * ratio, np.arange(ni) * ratio, indexing="ij")  # (nj, ni)
    out = np.empty((nk, nj, ni, 3), dtype=np.float32)
    for k in range(nk):
        coords = np.stack([np.full_like(jj, k * ratio), jj, ii])
        for c in range(3):
            out[k, ..., c] = map_coordinates(coarse[..., c], coords, order=1, mode="nearest")
    return out


def finest_width(deformation) -> float | None:
    """The narrowest kernel width of a deformation, in the units of its input points (mm).

    Reads the public attributes of shapeot's deformation models: a ``Composition``'s ``maps``,
    a ``LinearMap``'s ``matrix`` (its scaling, |det A|^(1/3), converts the widths of the maps
    after it back to input units) and the ``width`` of a ``KernelSpline`` or an ``LDDMM``. None
    when the deformation has no kernel (linear maps, or another object).
    """
    widths: list[float] = []

    def walk(obj, scale: float) -> float:
        maps = getattr(obj, "maps", None)
        if maps is not None:
            for m in maps:
                scale = walk(m, scale)
            return scale
        matrix = getattr(obj, "matrix", None)
        if matrix is not None:
            det = abs(float(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:3, :3])))
            return scale / det ** (1.0 / 3.0) if det > 0 else scale
        width = getattr(obj, "width", None)
        if isinstance(width, (int, float)) and width > 0:
            widths.append(float(width) * scale)
        return scale

    walk(deformation, 1.0)
    return min(widths) if widths else None


def displacement_field(deformation, points: np.ndarray, *, targets: np.ndarray | None = None,
                       spacing: float | None = None, margin: float | None = None, tolerance: float = 0.1,
                       min_spacing: float = 0.25, max_nodes: int = 8_000_000, coarse_nodes: int = 8_000,
                       progress: ProgressCallback | None = None) -> tuple[GridGeometry, np.ndarray, dict]:
    """Sample a deformation as a displacement grid, exact at the cells of the source vertices.

    Parameters
    ----------
    deformation : object with ``apply((M, 3)) -> (M, 3)``
        The map phi (mm -> mm), e.g. ``Registration.deformation``.
    points : (N, 3) float array
        The source vertices (mm): the grid covers them and is exact around them.
    targets : (N, 3) float array, optional
        phi(points) if already known (``Registration.warped.points``); computed otherwise.
    spacing : float, optional
        Fixed fine spacing h (mm), no refinement. Default: start at the smaller of 1/128 of the
        bounding-box diagonal and a quarter of the deformation's narrowest kernel width
        (:func:`finest_width`), and halve while the error at ``points`` exceeds ``tolerance``.
        Every round costs about 5-8 exact evaluations per source vertex whatever h is, so
        starting fine enough to need no second round saves time; a finer grid costs memory.
    margin : float, optional
        Padding (mm) of the box around ``points``; default max(5 mm, 10 % of the diagonal).
    tolerance : float, default: 0.1
        Largest acceptable error (mm) at ``points``.
    min_spacing : float, default: 0.25
        Finest spacing (mm) the refinement may reach.
    max_nodes : int, default: 8,000,000
        Largest fine grid (nodes). Displacements are stored as float32 (3 x 4 bytes a node; the
        rounding, under 1e-5 mm, is negligible): 8M nodes take 96 MB here and as much in VTK.
    coarse_nodes : int, default: 8,000
        Size of the coarse evaluation that fills the nodes away from the source.
    progress : callable(fraction, message) -> bool, optional
        Returning False raises :class:`shapeot.core.errors.Cancelled`.

    Returns
    -------
    geometry : GridGeometry
    field : (nk, nj, ni, 3) float32 array
        Displacement u = phi(g) - g at every node g (mm); index order z, y, x like VTK images.
    info : dict
        ``max_error_mm`` (numpy trilinear check at ``points``), ``coarse_spacing_mm``,
        ``exact_nodes``, ``refinements``.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise ValueError(f"points must be a non-empty (N, 3) array; got {pts.shape}")
    if spacing is not None and not spacing > 0:
        raise ValueError(f"spacing must be > 0 (mm); got {spacing}")
    if targets is None:
        targets = _evaluate(deformation, pts, progress, 0.0, 0.1, "transform: source vertices")
    targets = np.asarray(targets, dtype=np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    diag = float(np.linalg.norm(hi - lo)) or 1.0
    pad = max(5.0, 0.1 * diag) if margin is None else float(margin)
    lo, hi = lo - pad, hi + pad
    if spacing is not None:
        h = float(spacing)
    else:  # a quarter of the narrowest kernel usually meets 0.1 mm at once (error ~ h^2 |D^2 u| / 8)
        width = finest_width(deformation)
        h = max(min(diag / 128.0, width / 4.0 if width else np.inf), min_spacing)
    if GridGeometry.covering(lo, hi, h).n_nodes > max_nodes:
        h = float((np.prod(hi - lo) / max_nodes) ** (1.0 / 3.0)) * 1.05
    # 1. the coarse field, interpolated everywhere the exact values do not reach
    coarse_h = max(2.0 * h, float((np.prod(hi - lo) / coarse_nodes) ** (1.0 / 3.0)))
    coarse = GridGeometry.covering(lo, hi, coarse_h)
    gc = coarse.all_positions()
    coarse_field = (_evaluate(deformation, gc, progress, 0.1, 0.35, "transform: coarse grid") - gc).reshape(
        tuple(reversed(coarse.dims)) + (3,))
    refinements = 0
    span = (0.35, 0.95)
    while True:
        geometry = GridGeometry.covering(lo, hi, h)
        field = _upsample(coarse_field, coarse, geometry)
        # 2. exact values at the corners of every cell holding a source vertex
        cell = np.floor((pts - lo) / h).astype(np.int64)
        corners = np.unique((cell[:, None, :] + _CORNERS[None]).reshape(-1, 3), axis=0)
        corners = corners[np.all(corners < np.array(geometry.dims), axis=1)]
        gp = geometry.positions(corners)
        a, b = span[0], span[0] + (span[1] - span[0]) * 0.5
        field[corners[:, 2], corners[:, 1], corners[:, 0]] = _evaluate(
            deformation, gp, progress, a, b, f"transform: grid nodes at {h:.2f} mm") - gp
        span = (b, span[1])
        # 3. measure, refine while too coarse
        err = np.linalg.norm(pts + _trilinear(field, geometry, pts) - targets, axis=1)
        finer = GridGeometry.covering(lo, hi, h / 2.0)
        if (spacing is not None or err.max() <= tolerance or h / 2.0 < min_spacing
                or finer.n_nodes > max_nodes):
            break
        h /= 2.0
        refinements += 1
    info = {"max_error_mm": float(err.max()), "coarse_spacing_mm": coarse_h,
            "exact_nodes": int(len(corners)), "refinements": refinements}
    return geometry, field, info


def grid_transform(geometry: GridGeometry, field: np.ndarray):
    """A ``vtkOrientedGridTransform`` (linear interpolation) with displacement ``field`` (nk, nj, ni, 3), float32."""
    import slicer
    import vtk
    from vtk.util import numpy_support

    field = np.asarray(field, dtype=np.float32)
    if field.shape != tuple(reversed(geometry.dims)) + (3,):
        raise ValueError(f"field must have shape {tuple(reversed(geometry.dims)) + (3,)}; got {field.shape}")
    image = vtk.vtkImageData()
    image.SetDimensions(*geometry.dims)
    image.SetOrigin(*geometry.origin)
    image.SetSpacing(geometry.spacing, geometry.spacing, geometry.spacing)
    array = numpy_support.numpy_to_vtk(np.ascontiguousarray(field.reshape(-1, 3)), deep=True,
                                       array_type=vtk.VTK_FLOAT)
    array.SetName("displacement")
    image.GetPointData().SetScalars(array)
    grid = slicer.vtkOrientedGridTransform()
    grid.SetDisplacementGridData(image)
    grid.SetInterpolationModeToLinear()
    return grid


def grid_transform_node(scene, geometry: GridGeometry, field: np.ndarray, *, name: str = "ShapeOT deformation"):
    """A new ``vtkMRMLGridTransformNode`` holding the grid *to parent* (see the module docstring)."""
    node = scene.AddNewNodeByClass("vtkMRMLGridTransformNode", name)
    node.SetAndObserveTransformToParent(grid_transform(geometry, field))
    return node


def linear_transform_node(scene, matrix: np.ndarray, *, name: str = "ShapeOT transform"):
    """A new ``vtkMRMLLinearTransformNode`` whose transform to parent is ``matrix`` (4, 4)."""
    import vtk

    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"matrix must be 4x4; got {m.shape}")
    vm = vtk.vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            vm.SetElement(i, j, float(m[i, j]))
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
    node.SetMatrixTransformToParent(vm)
    return node


def transform_points(node, points: np.ndarray) -> np.ndarray:
    """(N, 3) points moved by a transform node's transform to world: what hardening does."""
    import vtk
    from vtk.util import numpy_support

    pts = np.ascontiguousarray(np.asarray(points, dtype=np.float64))
    transform = vtk.vtkGeneralTransform()
    node.GetTransformToWorld(transform)
    src = vtk.vtkPoints()
    src.SetDataTypeToDouble()
    src.SetData(numpy_support.numpy_to_vtk(pts, deep=True, array_type=vtk.VTK_DOUBLE))
    dst = vtk.vtkPoints()
    dst.SetDataTypeToDouble()
    transform.TransformPoints(src, dst)
    return np.array(numpy_support.vtk_to_numpy(dst.GetData()), dtype=np.float64).reshape(-1, 3)


def deformation_transform_node(scene, deformation, points: np.ndarray, *, targets: np.ndarray | None = None,
                               matrix: np.ndarray | None = None, name: str = "ShapeOT deformation",
                               far_samples: int = 200, progress: ProgressCallback | None = None,
                               **grid_options) -> tuple[object, TransformReport]:
    """The transform node of a deformation, and a report of its accuracy.

    Parameters
    ----------
    scene : vtkMRMLScene
    deformation : object with ``apply((M, 3)) -> (M, 3)``
    points : (N, 3) float array
        Source vertices (mm).
    targets : (N, 3) float array, optional
        phi(points) when known.
    matrix : (4, 4) array, optional
        When the deformation *is* this linear map (rigid / affine registrations): an exact
        ``vtkMRMLLinearTransformNode`` is made instead of a grid.
    name : str
        Node name.
    far_samples : int, default: 200
        Random points of the grid's box where the grid is also checked.
    progress : callable, optional
    **grid_options
        Passed to :func:`displacement_field` (``spacing``, ``tolerance``, ``margin``, ...).

    Returns
    -------
    node : vtkMRMLLinearTransformNode or vtkMRMLGridTransformNode
        Its transform to parent (= to world) moves source space onto the target.
    report : TransformReport
    """
    pts = np.asarray(points, dtype=np.float64)
    if targets is None:
        targets = _evaluate(deformation, pts, progress, 0.0, 0.05, "transform: source vertices")
    targets = np.asarray(targets, dtype=np.float64)
    if matrix is not None:
        node = linear_transform_node(scene, matrix, name=name)
        err = np.linalg.norm(transform_points(node, pts) - targets, axis=1)
        report = TransformReport("linear", float(err.max()), float(err.mean()))
    else:
        geometry, field, info = displacement_field(deformation, pts, targets=targets, progress=progress,
                                                   **grid_options)
        rng = np.random.default_rng(0)
        far = geometry.origin + rng.random((far_samples, 3)) * (np.array(geometry.dims) - 1) * geometry.spacing
        far_true = _evaluate(deformation, far, progress, 0.95, 1.0, "transform: checking")
        node = grid_transform_node(scene, geometry, field, name=name)
        err = np.linalg.norm(transform_points(node, pts) - targets, axis=1)
        far_err = np.linalg.norm(transform_points(node, far) - far_true, axis=1)
        report = TransformReport("grid", float(err.max()), float(err.mean()), float(far_err.max()),
                                 geometry.spacing, info["coarse_spacing_mm"], geometry.dims,
                                 info["exact_nodes"], info["refinements"])
    node.SetAttribute("ShapeOT.Representation", report.kind)
    node.SetAttribute("ShapeOT.MaxErrorAtSourceMM", f"{report.max_error_mm:.4g}")
    if report.spacing_mm is not None:
        node.SetAttribute("ShapeOT.GridSpacingMM", f"{report.spacing_mm:.4g}")
    return node, report
