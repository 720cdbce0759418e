r"""Export a deformation as ITK transforms valid in all of space (SimpleITK, ITK, ANTs, Slicer).

A registration's map is phi = N o P: P the pre-alignment (an affine map) and N(y) = y + u(y) its
non-rigid part, in the target's space. The kernel fields of N fade to zero away from the shape
(:mod:`shapeot.deform.spline`), so phi is exactly the affine P far from it. The exports keep that
structure, so that ITK reproduces phi everywhere, not only near the surface:

* **Composite transforms** (``.h5``): ``forward`` = [P, then the displacement field u]: its
  ``TransformPoint`` moves source points (and meshes) onto the target, like
  :meth:`Registration.deformation.apply`; ``inverse`` = [the field v of N^{-1}, then P^{-1}]: it
  maps target points to source points, the transform that resamples a *source image* onto the
  target's grid (``sitk.Resample``, ``antsApplyTransforms``) and that Slicer applies to move
  source nodes onto the target.
* **ANTs' file pair** (``ants_prefix``), with the target as ANTs' fixed image and the source as
  its moving image: ``PREFIX0GenericAffine.mat`` (P^{-1}), ``PREFIX1Warp.nii.gz`` (v) and
  ``PREFIX1InverseWarp.nii.gz`` (u): ``antsApplyTransforms -i source_image -r target_image -t
  PREFIX1Warp.nii.gz -t PREFIX0GenericAffine.mat`` resamples a source image onto the target,
  ``antsApplyTransformsToPoints`` and ``[PREFIX0GenericAffine.mat, 1]`` + the inverse warp move
  points the other way.

Conventions: shapeot works in RAS millimetres, ITK in LPS (x and y negated, for points and
vectors alike). Fields are float64 vectors (SimpleITK's ``DisplacementFieldTransform`` reads them
without a cast), trilinearly interpolated by ITK, zero outside their grid.

The grid is either the user's reference image (its origin, spacing, direction and size:
typically the target's T1), or a box in the target's space around the pre-aligned and warped
points, with a margin grown until both fields are below ``border_mm`` (0.01 mm) on the box's
faces: no cliff where the field ends. The box's spacing is refined (by the h^2 error of
trilinear interpolation) until the composite reproduces phi at the given points within
``tolerance_mm``, measured by evaluating the maps only at the corners of the cells that hold the
points. Fields are evaluated slab by slab, so the work memory is O(slab) besides the fields.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from shapeot.core.formats import IMAGE_SUFFIXES, ITK_TRANSFORM_SUFFIXES
from shapeot.core.progress import Progress, as_progress

from .compose import Composition
from .linear import LinearMap

__all__ = ["export_itk", "ItkExport", "Grid", "split_affine", "ras_to_lps", "ants_paths"]

_FLIP = np.array([-1.0, -1.0, 1.0])
#: Largest field magnitude allowed on the faces of a box grid (mm): the field ends without a cliff.
BORDER_MM = 0.01


def ras_to_lps(points: np.ndarray) -> np.ndarray:
    """(N, 3) RAS points or vectors -> LPS (x and y negated); the same function maps LPS -> RAS."""
    return np.asarray(points, dtype=np.float64) * _FLIP


def ants_paths(prefix: str | os.PathLike) -> dict[str, Path]:
    """The files of ANTs' convention for ``prefix``: affine, warp and inverse warp."""
    p = str(prefix)
    return {"ants_affine": Path(p + "0GenericAffine.mat"), "ants_warp": Path(p + "1Warp.nii.gz"),
            "ants_inverse_warp": Path(p + "1InverseWarp.nii.gz")}


# ------------------------------------------------------------------------------------ the map
class _NonRigid:
    """N(y) = T(M(T^{-1} y)): the non-linear maps M of a composition, seen in the target's space
    (T, the linear maps after them)."""

    def __init__(self, middle: tuple, after: LinearMap):
        self.middle, self.after, self.before = middle, after, after.inverse()

    def apply(self, points: np.ndarray) -> np.ndarray:
        x = self.before.apply(points)
        for m in self.middle:
            x = m.apply(x)
        return self.after.apply(x)


def split_affine(deformation) -> tuple[LinearMap, object]:
    """(P, N) with deformation = N o P: P the product of the linear maps of a composition (the
    pre-alignment, with the normalisation), N the non-linear maps between them conjugated into
    the target's space (``N.apply``), or None when the map is linear.

    Raises
    ------
    ValueError
        If linear maps stand between non-linear ones (no such split).
    """
    maps = list(deformation.maps) if isinstance(deformation, Composition) else [deformation]
    flat = []
    for m in maps:  # nested compositions
        flat.extend(m.maps if isinstance(m, Composition) else [m])
    nonlinear = [i for i, m in enumerate(flat) if not isinstance(m, LinearMap)]
    first, last = (nonlinear[0], nonlinear[-1]) if nonlinear else (len(flat), len(flat) - 1)
    before, middle, after = flat[:first], flat[first:last + 1], flat[last + 1:]
    if any(isinstance(m, LinearMap) for m in middle):
        raise ValueError("the deformation interleaves linear and non-linear maps: no affine part to split off")
    pre, post = LinearMap.identity(), LinearMap.identity()
    for m in before:
        pre = m.compose(pre)
    for m in after:
        post = m.compose(post)
    if not middle:
        return post.compose(pre), None
    return post.compose(pre), _NonRigid(tuple(middle), post)


def _affine_lps(m: LinearMap):
    """The SimpleITK affine transform of a RAS linear map (LPS: F A F, F t)."""
    import SimpleITK as sitk

    f = np.diag(_FLIP)
    a = f @ m.matrix[:3, :3] @ f
    t = _FLIP * m.matrix[:3, 3]
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(tuple(float(v) for v in a.ravel()))
    tx.SetTranslation(tuple(float(v) for v in t))
    return tx


# ------------------------------------------------------------------------------------ grids
@dataclasses.dataclass(frozen=True)
class Grid:
    """A regular grid in LPS mm: point (i, j, k) is origin + direction @ (spacing * (i, j, k))."""

    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    size: tuple[int, int, int]

    @property
    def voxels(self) -> int:
        return int(np.prod(self.size, dtype=np.int64))

    def points(self, z0: int, z1: int) -> np.ndarray:
        """(n, 3) LPS points of the slabs z0 <= k < z1, x fastest."""
        nx, ny, _ = self.size
        k, j, i = np.meshgrid(np.arange(z0, z1), np.arange(ny), np.arange(nx), indexing="ij")
        idx = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(np.float64)
        return self.origin + (idx * self.spacing) @ self.direction.T

    def index(self, lps: np.ndarray) -> np.ndarray:
        """Continuous (i, j, k) of LPS points."""
        return (np.asarray(lps) - self.origin) @ np.linalg.inv(self.direction).T / self.spacing

    def faces(self, per_side: int = 48) -> np.ndarray:
        """LPS points spread over the six faces of the grid's box."""
        n = np.asarray(self.size) - 1
        t = np.linspace(0.0, 1.0, per_side)
        a, b = np.meshgrid(t, t, indexing="ij")
        out = []
        for axis in range(3):
            u, v = [d for d in range(3) if d != axis]
            for side in (0.0, 1.0):
                idx = np.zeros((a.size, 3))
                idx[:, axis], idx[:, u], idx[:, v] = side * n[axis], a.ravel() * n[u], b.ravel() * n[v]
                out.append(self.origin + (idx * self.spacing) @ self.direction.T)
        return np.vstack(out)

    def image(self, field: np.ndarray):
        """A SimpleITK float64 vector image of the field (nz, ny, nx, 3) on this grid."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(field, isVector=True)
        img.SetOrigin(tuple(float(v) for v in self.origin))
        img.SetSpacing(tuple(float(v) for v in self.spacing))
        img.SetDirection(tuple(float(v) for v in self.direction.ravel()))
        return img

    @classmethod
    def box(cls, lo: np.ndarray, hi: np.ndarray, h: float) -> Grid:
        size = tuple(int(np.ceil((hi[d] - lo[d]) / h)) + 1 for d in range(3))
        return cls(np.asarray(lo, dtype=np.float64), np.full(3, float(h)), np.eye(3), size)

    @classmethod
    def of_image(cls, path: str | os.PathLike) -> Grid:
        """The grid of an image file (its header only)."""
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError as exc:
            raise ValueError(f"{path}: not an image SimpleITK reads ({' '.join(str(exc).split())[:200]})") from None
        size = reader.GetSize()
        if len(size) < 3:
            raise ValueError(f"{path}: a reference grid must be a 3-D image; this one has {len(size)} dimensions")
        return cls(np.asarray(reader.GetOrigin()[:3], dtype=np.float64),
                   np.asarray(reader.GetSpacing()[:3], dtype=np.float64),
                   np.asarray(reader.GetDirection(), dtype=np.float64).reshape(len(size), len(size))[:3, :3],
                   tuple(int(s) for s in size[:3]))


# ------------------------------------------------------------------------------------ fields
def _displacement(n: _NonRigid, lps: np.ndarray) -> np.ndarray:
    """u = N(q) - q at LPS points q, as LPS vectors."""
    q = ras_to_lps(lps)
    return ras_to_lps(n.apply(q) - q)


def _field(n: _NonRigid, grid: Grid, progress: Progress, block: int = 1 << 18) -> np.ndarray:
    """(nz, ny, nx, 3) the forward field u on the grid, slab by slab."""
    nx, ny, nz = grid.size
    field = np.empty((nz, ny, nx, 3), dtype=np.float64)
    step = max(1, block // (nx * ny))
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        progress(z0 / nz, f"ITK field: slab {z0 + 1}-{z1} of {nz}")
        field[z0:z1] = _displacement(n, grid.points(z0, z1)).reshape(z1 - z0, ny, nx, 3)
    progress(1.0, "ITK field: done")
    return field


def _sample(field: np.ndarray, grid: Grid, lps: np.ndarray) -> np.ndarray:
    """The field at LPS points as ITK interpolates it: trilinear, zero outside the grid."""
    from scipy.ndimage import map_coordinates

    coords = grid.index(lps)[:, ::-1].T  # (3, N) in array order z, y, x
    return np.stack([map_coordinates(field[..., c], coords, order=1, mode="constant", cval=0.0)
                     for c in range(3)], axis=1)


def _inverse_field(u: np.ndarray, grid: Grid, progress: Progress, iterations: int = 60,
                   tol: float = 1e-5) -> tuple[np.ndarray, float]:
    """v with q + v(q) = N_h^{-1}(q) on the grid's nodes, N_h the map of the interpolated u (what
    ITK applies): the fixed point v <- -u(q + v), which converges where |Du| < 1 (the maps'
    steps are injective). Returns v and the largest residual |v + u(q + v)| (mm)."""
    nx, ny, nz = grid.size
    v = np.empty_like(u)
    worst = 0.0
    step = max(1, (1 << 18) // (nx * ny))
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        progress(z0 / nz, f"ITK inverse field: slab {z0 + 1}-{z1} of {nz}")
        q = grid.points(z0, z1)
        vv = -u[z0:z1].reshape(-1, 3).copy()
        active = np.arange(len(q))
        for _ in range(iterations):
            r = -_sample(u, grid, q[active] + vv[active]) - vv[active]
            norm = np.sqrt((r * r).sum(1))
            keep = norm > tol
            vv[active] += r
            active = active[keep]
            if len(active) == 0:
                break
        if len(active):
            res = _sample(u, grid, q[active] + vv[active]) + vv[active]
            worst = max(worst, float(np.sqrt((res * res).sum(1)).max()))
        v[z0:z1] = vv.reshape(z1 - z0, ny, nx, 3)
    progress(1.0, "ITK inverse field: done")
    return v, worst


_CORNERS = np.array([[i, j, k] for k in (0, 1) for j in (0, 1) for i in (0, 1)])  # (8, 3) offsets x, y, z


def _interpolated_error(n: _NonRigid, grid: Grid, at_lps: np.ndarray, want_lps: np.ndarray) -> float:
    """Largest |at + interpolated u(at) - want| (mm), evaluating u only at the corners of the
    cells that hold the points: the numbers the whole grid would give."""
    idx = grid.index(at_lps)
    size = np.asarray(grid.size)
    base = np.clip(np.floor(idx).astype(np.int64), 0, size - 2)
    frac = np.clip(idx - base, 0.0, 1.0)
    corners = base[:, None, :] + _CORNERS[None]  # (N, 8, 3)
    flat = corners[..., 0] + size[0] * (corners[..., 1] + size[1] * corners[..., 2])
    uniq, inv = np.unique(flat.ravel(), return_inverse=True)
    ijk = np.stack([uniq % size[0], (uniq // size[0]) % size[1], uniq // (size[0] * size[1])], axis=1)
    disp = _displacement(n, grid.origin + (ijk * grid.spacing) @ grid.direction.T)[inv].reshape(len(at_lps), 8, 3)
    w = np.prod(np.where(_CORNERS[None] == 1, frac[:, None, :], 1.0 - frac[:, None, :]), axis=2)  # (N, 8)
    got = at_lps + (w[..., None] * disp).sum(1)
    return float(np.sqrt(((got - want_lps) ** 2).sum(1).max()))


def _border(n: _NonRigid, grid: Grid) -> float:
    """Largest |u| on the faces of the grid's box (mm)."""
    u = _displacement(n, grid.faces())
    return float(np.sqrt((u * u).sum(1)).max())


def _face_max(field: np.ndarray) -> float:
    """Largest magnitude of a (nz, ny, nx, 3) field on the six faces of its grid (mm)."""
    norms = np.sqrt((field * field).sum(-1))
    return float(max(norms[[0, -1]].max(), norms[:, [0, -1]].max(), norms[:, :, [0, -1]].max()))


def _box(n: _NonRigid, at_lps: np.ndarray, to_lps: np.ndarray, margin_mm: float | None, border_mm: float,
         spacing_mm: float | None, tolerance_mm: float, max_voxels: int, progress: Progress) -> tuple[Grid, int]:
    """The box grid: a margin wide enough that the fields vanish on its faces, then a spacing fine
    enough for the tolerance at the points; + the number of spacing refinements."""
    lo = np.minimum(at_lps.min(0), to_lps.min(0))
    hi = np.maximum(at_lps.max(0), to_lps.max(0))
    extent = float((hi - lo).max())
    margin = float(margin_mm) if margin_mm else 0.25 * extent
    for _ in range(12):  # the margin: the fields must end below border_mm (no cliff)
        progress(0.0, f"ITK grid: margin {margin:.0f} mm")
        grid = Grid.box(lo - margin, hi + margin, (hi - lo + 2 * margin).max() / 32.0)
        if margin_mm or _border(n, grid) <= border_mm:
            break
        margin *= 1.4
    else:
        raise ValueError(f"the non-rigid field is still above {border_mm} mm {margin:.0f} mm from the shape: "
                         "give --reference (an image grid) or a larger margin")
    h = float(spacing_mm) if spacing_mm else float((hi - lo + 2 * margin).max() / 64.0)
    for refinements in range(30):  # the spacing: trilinear error ~ h^2
        grid = Grid.box(lo - margin, hi + margin, h)
        if grid.voxels > max_voxels:
            raise ValueError(f"a {grid.size[0]}x{grid.size[1]}x{grid.size[2]} grid (spacing {h:.3g} mm) exceeds "
                             f"max_voxels={max_voxels} before the error fell below {tolerance_mm} mm")
        progress(0.0, f"ITK grid: spacing {h:.2f} mm")
        err = _interpolated_error(n, grid, at_lps, to_lps)
        if err <= tolerance_mm:
            return grid, refinements
        h *= float(np.clip(0.9 * np.sqrt(tolerance_mm / err), 0.25, 0.5))
    raise ValueError(f"no spacing met the tolerance {tolerance_mm} mm")


# ------------------------------------------------------------------------------------ export
@dataclasses.dataclass(frozen=True)
class ItkExport:
    """What :func:`export_itk` wrote.

    Attributes
    ----------
    paths : dict of str to Path
        By role: "forward", "inverse" (composite .h5 files), "ants_affine", "ants_warp",
        "ants_inverse_warp".
    affine : (4, 4) float64 array
        P, the affine part (RAS, source -> target).
    grid : Grid or None
        The fields' grid (LPS); None for a linear map (no field).
    max_error_mm : float
        Largest distance, over the given points, between the composite transforms (forward at
        the points, inverse at their images) and the exact map.
    border_mm : float
        Largest field magnitude on the grid's faces (what a resampler sees where the field ends).
    refinements : int
        Times the box's spacing was refined.
    inverse_residual_mm : float
        Largest |v(q) + u(q + v(q))| over the grid's nodes: how well the inverse field inverts
        the forward one as ITK interpolates it.
    """

    paths: dict
    affine: np.ndarray
    grid: Grid | None
    max_error_mm: float
    border_mm: float
    refinements: int = 0
    inverse_residual_mm: float = 0.0

    @property
    def spacing_mm(self) -> float:
        return float(self.grid.spacing.min()) if self.grid is not None else 0.0


def export_itk(deformation, points: np.ndarray, *, forward: str | os.PathLike | None = None,
               inverse: str | os.PathLike | None = None, ants_prefix: str | os.PathLike | None = None,
               reference: str | os.PathLike | None = None, margin_mm: float | None = None,
               spacing_mm: float | None = None, tolerance_mm: float = 0.05, border_mm: float = BORDER_MM,
               max_voxels: int = 60_000_000, outputs=None, overwrite: bool = False, progress=None) -> ItkExport:
    """Write ``deformation`` as ITK composite transforms and/or ANTs' file pair (module docstring).

    Parameters
    ----------
    deformation : a map with ``.apply(points)`` (RAS mm): ``Registration.deformation`` or a
        loaded transform file; its affine part is split off by :func:`split_affine`.
    points : (N, 3) float array
        RAS mm: the source vertices, where the transforms must be accurate (``tolerance_mm``),
        and around which the box grid is built.
    forward, inverse : path, optional
        Composite transforms (``.h5``): source -> target points, and target -> source points
        (resampling source images onto the target).
    ants_prefix : path prefix, optional
        ``PREFIX0GenericAffine.mat``, ``PREFIX1Warp.nii.gz``, ``PREFIX1InverseWarp.nii.gz``.
    reference : image path, optional
        The fields' grid (e.g. the target's T1); default a box (module docstring).
    margin_mm, spacing_mm : float, optional
        Fix the box's margin or its first spacing instead of choosing them.
    tolerance_mm : float, default: 0.05
    border_mm : float, default: 0.01
    max_voxels : int
        Refuse finer box grids (24 bytes a voxel per field).
    outputs : OutputSet, optional
        Stage the files in this set (committed by the caller); default: a set of their own,
        committed here (``overwrite`` applies).
    progress : callable(fraction, message), optional

    Returns
    -------
    ItkExport

    Raises
    ------
    ValueError
        No output asked for, a wrong suffix, or a grid that cannot meet the tolerance.
    MissingDependencyError
        Without SimpleITK.
    """
    from shapeot.core.outputs import OutputSet

    paths = _output_paths(forward, inverse, ants_prefix)
    sitk = _simpleitk()
    own = outputs is None
    outputs = OutputSet(overwrite=overwrite) if own else outputs
    for p in paths.values():
        outputs.add(p)  # checked before the work
    prog = as_progress(progress)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0 or not np.isfinite(pts).all():
        raise ValueError(f"points must be a non-empty, finite (N, 3) array; got shape {pts.shape}")
    affine, nonrigid = split_affine(deformation)
    with (outputs if own else _nothing()):
        result = _fields(nonrigid, affine, pts, paths, reference, margin_mm, spacing_mm, tolerance_mm, border_mm,
                         max_voxels, prog)
        _write(sitk, outputs, paths, affine, result)
        if own:
            outputs.commit()
    return ItkExport(paths, affine.matrix, *result[2:])


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _simpleitk():
    try:
        import SimpleITK as sitk
    except ImportError as exc:  # pragma: no cover - depends on the install
        from shapeot.shapes.errors import MissingDependencyError

        raise MissingDependencyError("writing ITK transforms needs SimpleITK: pip install SimpleITK") from exc
    return sitk


def _output_paths(forward, inverse, ants_prefix) -> dict[str, Path]:
    paths = {k: Path(v) for k, v in (("forward", forward), ("inverse", inverse)) if v is not None}
    for p in paths.values():
        if not p.name.lower().endswith(ITK_TRANSFORM_SUFFIXES):
            hint = (" (a NIfTI field holds no affine part: for the ANTs file pair, give ants_prefix / --ants PREFIX)"
                    if p.name.lower().endswith(IMAGE_SUFFIXES) else "")
            raise ValueError(f"{p}: an ITK composite transform (affine + displacement field) is written as .h5{hint}")
    if ants_prefix is not None:
        paths.update(ants_paths(ants_prefix))
    if not paths:
        raise ValueError("nothing to write: give forward, inverse or ants_prefix")
    return paths


def _fields(nonrigid, affine: LinearMap, pts: np.ndarray, paths: dict, reference, margin_mm, spacing_mm,
            tolerance_mm, border_mm, max_voxels, prog: Progress):
    """(u, v, grid, max_error_mm, border_mm, refinements, inverse_residual_mm) of the export; the
    errors are those of the fields as written, interpolated as ITK interpolates them."""
    if nonrigid is None:  # a linear map: affine transforms, no field
        return None, None, None, 0.0, 0.0, 0, 0.0
    at = ras_to_lps(affine.apply(pts))  # the pre-aligned points, in the target's space
    to = ras_to_lps(nonrigid.apply(affine.apply(pts)))  # their images
    refinements = 0
    if reference is not None:
        grid = Grid.of_image(reference)
        if grid.voxels > max_voxels:
            raise ValueError(f"the reference grid has {grid.voxels:,} voxels, more than max_voxels={max_voxels:,}")
    else:
        grid, refinements = _box(nonrigid, at, to, margin_mm, border_mm, spacing_mm, tolerance_mm, max_voxels,
                                 prog.span(0.0, 0.1))
    u = _field(nonrigid, grid, prog.span(0.1, 0.7))
    v, residual = _inverse_field(u, grid, prog.span(0.7, 0.95))
    err = max(float(np.sqrt(((at + _sample(u, grid, at) - to) ** 2).sum(1)).max()),
              float(np.sqrt(((to + _sample(v, grid, to) - at) ** 2).sum(1)).max()))
    return u, v, grid, err, max(_face_max(u), _face_max(v)), refinements, residual


def _write(sitk, outputs, paths: dict, affine: LinearMap, result) -> None:
    """Stage every requested file."""
    u, v, grid = result[:3]

    def field(values):
        return sitk.DisplacementFieldTransform(grid.image(values)) if grid is not None else None

    p_lps, p_inv = _affine_lps(affine), _affine_lps(affine.inverse())
    if "forward" in paths:  # the last transform of the list is applied first: P, then u
        parts = [p_lps] if u is None else [field(u), p_lps]
        sitk.WriteTransform(sitk.CompositeTransform(parts), str(outputs.stage(paths["forward"])))
    if "inverse" in paths:  # v first, then P^{-1}
        parts = [p_inv] if v is None else [p_inv, field(v)]
        sitk.WriteTransform(sitk.CompositeTransform(parts), str(outputs.stage(paths["inverse"])))
    if "ants_affine" in paths:
        sitk.WriteTransform(p_inv, str(outputs.stage(paths["ants_affine"])))
        zero = np.zeros((*grid.size[::-1], 3)) if grid is not None else np.zeros((2, 2, 2, 3))
        grid_or_unit = grid if grid is not None else Grid.box(np.zeros(3), np.ones(3), 1.0)
        sitk.WriteImage(grid_or_unit.image(zero if v is None else v), str(outputs.stage(paths["ants_warp"])))
        sitk.WriteImage(grid_or_unit.image(zero if u is None else u), str(outputs.stage(paths["ants_inverse_warp"])))
