r"""Export a deformation as an ITK displacement-field transform (read by SimpleITK, ITK, ANTs, Slicer).

Conventions
-----------
* **Frame.** shapeot works in RAS millimetres; ITK in LPS millimetres. A point (or a vector)
  changes frame by negating x and y: ``lps = ras * (-1, -1, 1)``. The exported grid's origin and
  spacing, and the displacement vectors, are all in LPS; the grid's direction is the identity.
* **Field.** An ITK ``DisplacementFieldTransform`` holds vectors u on a regular grid and maps a
  point p to ``p + u(p)``, u interpolated trilinearly (``TransformPoint``).
* **Direction.** ``direction="forward"`` (the default) stores u(p) = phi(p) - p: ``TransformPoint``
  of a source point gives its warped position, i.e. the file moves *points and meshes* of the
  source onto the target, like :meth:`Registration.deformation.apply`. ITK's resampling
  convention reads a transform as mapping *output* points to *input* points: given to a resampler
  (``sitk.Resample``, ``antsApplyTransforms``), the forward file therefore brings an image of the
  target's space onto the source's grid. ``direction="inverse"`` stores u(q) = phi^{-1}(q) - q
  instead (phi inverted numerically on the grid): the transform that resamples a *source image*
  onto the target's grid, and the one that applications following the resampling convention for
  every node (Slicer) use to move the source model onto the target.
* **Grid.** It covers the points (or their images, for the inverse) with ``margin_mm`` on every
  side. Its spacing starts at ``spacing_mm`` (default: the largest extent / 64) and is divided
  (by 2 to 4, as the h^2 error of trilinear interpolation predicts) until interpolating the
  field reproduces phi at every given point within ``tolerance_mm``, or the grid would exceed
  ``max_voxels`` (an error). The error is measured exactly, with ITK's interpolation, by
  evaluating the map only at the corners of the cells that hold the points; the whole grid is
  evaluated once, at the chosen spacing. Outside the grid ITK's field is zero: points there are not moved.

The field is evaluated slab by slab (``block_points`` points at a time), so the work memory stays
O(block) besides the field itself (24 bytes per voxel).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from shapeot.core.formats import IMAGE_SUFFIXES, ITK_TRANSFORM_SUFFIXES

__all__ = ["write_itk_displacement_field", "ItkExport", "ras_to_lps"]

_FLIP = np.array([-1.0, -1.0, 1.0])


def ras_to_lps(points: np.ndarray) -> np.ndarray:
    """(N, 3) RAS points or vectors -> LPS (x and y negated); the same function maps LPS -> RAS."""
    return np.asarray(points, dtype=np.float64) * _FLIP


@dataclasses.dataclass(frozen=True)
class ItkExport:
    """What :func:`write_itk_displacement_field` wrote.

    Attributes
    ----------
    path : Path
    direction : str
        "forward" (source -> warped) or "inverse" (warped -> source).
    origin_lps : (3,) float array, mm
    spacing_mm : float
        Isotropic grid spacing.
    size : (3,) int
        Grid points along x, y, z.
    max_error_mm : float
        Largest distance, over the given points, between the interpolated transform and the
        exact map (phi, or phi^{-1} for the inverse).
    refinements : int
        Times the spacing was refined.
    inverse_residual_mm : float or None
        For the inverse: the largest |phi(phi^{-1}(q)) - q| over the grid points.
    """

    path: Path
    direction: str
    origin_lps: np.ndarray
    spacing_mm: float
    size: tuple
    max_error_mm: float
    refinements: int
    inverse_residual_mm: float | None = None


def _grid_points_lps(origin: np.ndarray, h: float, size, z0: int, z1: int) -> np.ndarray:
    nx, ny, _ = size
    k, j, i = np.meshgrid(np.arange(z0, z1), np.arange(ny), np.arange(nx), indexing="ij")
    idx = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(np.float64)  # x fastest
    return origin + h * idx


def _inverse_points(deformation, q: np.ndarray, lin_inv: np.ndarray, iterations: int = 50,
                    tol: float = 1e-5) -> tuple[np.ndarray, float]:
    """phi^{-1}(q) by the fixed point x <- x + A^{-1} (q - phi(x)), A the best affine fit of phi;
    only the points not yet converged (residual > tol mm) are iterated."""
    a_inv, t_inv = lin_inv[:3, :3], lin_inv[:3, 3]
    x = q @ a_inv.T + t_inv
    active = np.arange(len(q))
    res = np.zeros(len(q))
    for _ in range(iterations):
        r = q[active] - np.asarray(deformation.apply(x[active]))
        norm = np.sqrt((r * r).sum(1))
        res[active] = norm
        keep = norm > tol
        x[active[keep]] += r[keep] @ a_inv.T
        active = active[keep]
        if len(active) == 0:
            break
    return x, float(res.max()) if len(res) else 0.0


def _mapped(deformation, q: np.ndarray, block_points: int, inverse: bool, lin_inv) -> tuple[np.ndarray, float]:
    """phi(q) or phi^{-1}(q) for RAS points q, block by block; + the inverse's worst residual (mm)."""
    out = np.empty_like(q)
    worst = 0.0
    for s in range(0, len(q), block_points):
        part = q[s:s + block_points]
        if inverse:
            out[s:s + block_points], res = _inverse_points(deformation, part, lin_inv)
            worst = max(worst, res)
        else:
            out[s:s + block_points] = np.asarray(deformation.apply(part))
    return out, worst


def _field(deformation, origin, h, size, block_points, inverse, lin_inv):
    """(nz, ny, nx, 3) LPS displacement on the grid, evaluated slab by slab; + inverse residual."""
    nx, ny, nz = size
    field = np.empty((nz, ny, nx, 3), dtype=np.float64)
    step = max(1, block_points // (nx * ny))
    worst = 0.0
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        q = ras_to_lps(_grid_points_lps(origin, h, size, z0, z1))
        out, res = _mapped(deformation, q, block_points, inverse, lin_inv)
        worst = max(worst, res)
        field[z0:z1] = ras_to_lps(out - q).reshape(z1 - z0, ny, nx, 3)
    return field, (worst if inverse else None)


_CORNERS = np.array([[i, j, k] for k in (0, 1) for j in (0, 1) for i in (0, 1)])  # (8, 3) offsets x, y, z


def _corner_error(deformation, origin, h, size, from_lps, to_lps, block_points, inverse, lin_inv) -> float:
    """The error at the points of the grid (origin, h, size), evaluating the map only at the
    corners of the cells that hold the points: the same numbers as the full grid would give."""
    idx = (from_lps - origin) / h
    base = np.clip(np.floor(idx).astype(np.int64), 0, np.asarray(size) - 2)
    frac = idx - base  # (N, 3) in [0, 1]
    corners = base[:, None, :] + _CORNERS[None]  # (N, 8, 3)
    flat = corners[..., 0] + size[0] * (corners[..., 1] + size[1] * corners[..., 2])
    uniq, inv = np.unique(flat.ravel(), return_inverse=True)
    ijk = np.stack([uniq % size[0], (uniq // size[0]) % size[1], uniq // (size[0] * size[1])], axis=1)
    q = ras_to_lps(origin + h * ijk)
    out, _ = _mapped(deformation, q, block_points, inverse, lin_inv)
    disp = ras_to_lps(out - q)[inv].reshape(len(from_lps), 8, 3)
    w = np.prod(np.where(_CORNERS[None] == 1, frac[:, None, :], 1.0 - frac[:, None, :]), axis=2)  # (N, 8)
    got = from_lps + (w[..., None] * disp).sum(1)
    return float(np.sqrt(((got - to_lps) ** 2).sum(1).max()))


def _interpolate(field: np.ndarray, origin: np.ndarray, h: float, p_lps: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of the field at LPS points (ITK's linear interpolation; 0 outside)."""
    from scipy.ndimage import map_coordinates

    idx = (p_lps - origin) / h  # (N, 3) continuous indices x, y, z
    coords = idx[:, ::-1].T  # (3, N) in array order z, y, x
    return np.stack([map_coordinates(field[..., c], coords, order=1, mode="constant", cval=0.0)
                     for c in range(3)], axis=1)


def write_itk_displacement_field(deformation, points: np.ndarray, path: str | os.PathLike, *,
                                 margin_mm: float = 10.0, spacing_mm: float | None = None,
                                 tolerance_mm: float = 0.05, direction: str = "forward",
                                 max_voxels: int = 40_000_000, block_points: int = 1 << 18,
                                 overwrite: bool = False) -> ItkExport:
    """Write ``deformation`` as an ITK displacement-field transform on a grid around ``points``.

    Parameters
    ----------
    deformation : a model with ``.apply(points)`` (RAS mm)
        E.g. ``Registration.deformation`` or a loaded transform file.
    points : (N, 3) float array
        RAS mm: the points the file must move accurately (the source's vertices). The grid
        covers them (forward) or their images (inverse) with ``margin_mm``.
    path : str or PathLike
        ``.h5`` (an ITK transform file: ``SimpleITK.ReadTransform``, ANTs, Slicer) or an image
        (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``: the vector field itself, the format of ANTs'
        warps).
    margin_mm : float, default: 10
    spacing_mm : float, optional
        First grid spacing tried (refined until the tolerance is met); default: extent / 64.
    tolerance_mm : float, default: 0.05
        Largest allowed error of the interpolated transform at ``points``.
    direction : {"forward", "inverse"}
        See the module docstring: forward moves source points; inverse resamples source images.
    max_voxels : int, default: 40 million
        Refuse finer grids (memory: 24 bytes a voxel, twice while writing).
    block_points : int
        Points evaluated at once.
    overwrite : bool, default: False

    Returns
    -------
    ItkExport

    Raises
    ------
    ValueError
        If the tolerance cannot be met within ``max_voxels`` or the format is not supported.
    MissingDependencyError
        If SimpleITK is not installed (``pip install SimpleITK``).
    """
    if direction not in ("forward", "inverse"):
        raise ValueError(f"direction must be 'forward' or 'inverse'; got {direction!r}")
    path = Path(path)
    lower = path.name.lower()
    if not lower.endswith(ITK_TRANSFORM_SUFFIXES + IMAGE_SUFFIXES):
        raise ValueError(f"{path}: an ITK displacement field is written as .h5 (transform) or "
                         f"{', '.join(IMAGE_SUFFIXES)} (vector image)")
    from shapeot.core.outputs import OutputSet

    outputs = OutputSet(overwrite=overwrite)
    outputs.add(path)  # checked before the work
    try:
        import SimpleITK as sitk
    except ImportError as exc:  # pragma: no cover - depends on the install
        from shapeot.shapes.errors import MissingDependencyError

        raise MissingDependencyError("writing ITK transforms needs SimpleITK: pip install SimpleITK") from exc

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise ValueError(f"points must be a non-empty (N, 3) array; got shape {pts.shape}")
    moved = np.asarray(deformation.apply(pts))
    inverse = direction == "inverse"
    lin_inv = None
    if inverse:
        from .linear import fit_linear

        lin_inv = fit_linear(pts, moved, kind="affine").inverse().matrix
        check_from, check_to = moved, pts
    else:
        check_from, check_to = pts, moved
    from_lps, to_lps = ras_to_lps(check_from), ras_to_lps(check_to)
    lo = from_lps.min(0) - margin_mm
    hi = from_lps.max(0) + margin_mm
    h = float(spacing_mm) if spacing_mm else float((hi - lo).max() / 64.0)
    if not h > 0:
        raise ValueError(f"spacing must be positive; got {h}")
    refinements = 0
    while True:  # choose the spacing from the corners of the points' cells: cheap, and exact
        size = tuple(int(np.ceil((hi[d] - lo[d]) / h)) + 1 for d in range(3))
        if int(np.prod(size, dtype=np.int64)) > max_voxels:
            raise ValueError(f"a {size[0]}x{size[1]}x{size[2]} grid (spacing {h:.3g} mm) exceeds max_voxels="
                             f"{max_voxels} before the error fell below {tolerance_mm} mm")
        err = _corner_error(deformation, lo, h, size, from_lps, to_lps, block_points, inverse, lin_inv)
        if err <= tolerance_mm:
            break
        # trilinear interpolation errors scale as h^2: jump to the predicted spacing (with a
        # safety factor), at least halving and at most dividing by 4
        h *= float(np.clip(0.9 * np.sqrt(tolerance_mm / err), 0.25, 0.5))
        refinements += 1
    field, residual = _field(deformation, lo, h, size, block_points, inverse, lin_inv)
    got = from_lps + _interpolate(field, lo, h, from_lps)
    err = float(np.sqrt(((got - to_lps) ** 2).sum(1).max()))

    image = sitk.GetImageFromArray(field, isVector=True)  # (z, y, x, 3) -> x fastest
    del field
    image.SetOrigin(tuple(float(v) for v in lo))
    image.SetSpacing((h, h, h))
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    with outputs:
        tmp = outputs.stage(path)  # keeps the file's name: ITK picks its writer by the extension
        if lower.endswith(ITK_TRANSFORM_SUFFIXES):
            sitk.WriteTransform(sitk.DisplacementFieldTransform(image), str(tmp))
        else:
            sitk.WriteImage(image, str(tmp))
        outputs.commit()
    return ItkExport(path, direction, lo, h, size, err, refinements, residual)
