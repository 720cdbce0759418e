r"""``shapeot.register``: pre-alignment, non-rigid deformation and fine-tuning by optimal transport.

The three-step robust-OT registration of Shen, Feydy et al., "Accurate point cloud registration
with robust optimal transport" (NeurIPS 2021), on the OT engine :func:`shapeot.ot.solve`:

1. normalise: centre both shapes on their area-weighted centroids and divide by the source's
   RMS radius (the ``scale``), so that every length of the configuration is relative;
2. pre-align by unbalanced OT + weighted Procrustes / affine fits, from several starting
   rotations (:mod:`.prealign`);
3. deform coarse to fine: OT correspondences projected onto Gaussian kernel splines or LDDMM
   geodesic shootings (:mod:`.nonrigid`);
4. fine-tune the Sinkhorn divergence + deformation energy by gradient descent (:mod:`.finetune`).

Vertex areas weigh every step, so the mesh density does not bias the result. All the maps are
composed, with the normalisation undone, into ``Registration.deformation``.

Cost follows the shape, not the vertex count: shapes with more than
``config.working_points`` vertices are reduced to about that many (quadric decimation of a mesh,
weighted grid clusters of a cloud) for the pre-alignment and the non-rigid levels, and every
spline pools its centres in cells of ``config.centre_cell`` kernel widths. The full-resolution
vertices are touched only at the end, by O(N)-memory steps: the composed map evaluated at every
vertex (truncated kernel sums, :mod:`shapeot.deform.kernels`), correspondences by closest points
on the target's surface, and the metrics. A FreeSurfer ``lh.pial`` (164k vertices) thus costs
about what the 10k sample brain costs, in about 1 GB.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from shapeot.deform import Composition, LinearMap

from .config import RegistrationConfig
from .finetune import finetune_map
from .nonrigid import nonrigid_levels
from .prealign import prealign_points
from shapeot.core.progress import Progress, ProgressCallback
from .result import Registration
from shapeot.core.pooling import clusters

__all__ = ["register"]


def effective_reach(config: RegistrationConfig, cloud: bool) -> float | None:
    """The non-rigid stage's OT reach (fraction of the scale): ``config.reach``, else
    ``config.cloud_reach`` when either shape is a point cloud, else None (balanced)."""
    if config.reach is not None:
        return config.reach
    return config.cloud_reach if cloud else None


def _normalisers(source, target, normalise: bool) -> tuple[LinearMap, LinearMap, float]:
    """(source -> normalised, normalised -> target frame, scale in mm)."""
    p, w = np.asarray(source.points), np.asarray(source.weights)
    cs = w @ p
    scale = float(np.sqrt(w @ ((p - cs) ** 2).sum(1)))
    if not scale > 0:
        raise ValueError("the source has a single point (zero spread): nothing to register")
    if not normalise:
        return LinearMap.identity(), LinearMap.identity(), scale
    ct = np.asarray(target.weights) @ np.asarray(target.points)
    norm = np.eye(4)
    norm[:3, :3] /= scale
    norm[:3, 3] = -cs / scale
    denorm = np.eye(4)
    denorm[:3, :3] *= scale
    denorm[:3, 3] = ct
    return LinearMap(norm), LinearMap(denorm), scale


def _faces(shape) -> np.ndarray | None:
    """The triangles of a mesh with positive total area (to reweigh by current areas), else None."""
    if shape.faces is None or len(shape.faces) == 0:
        return None
    return np.asarray(shape.faces)


def _spacing(points: np.ndarray) -> float:
    """Mean distance of a point to its nearest neighbour: the sampling length of a shape."""
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return 0.0
    return float(cKDTree(points).query(points, k=2)[0][:, 1].mean())


def _working(shape, n: int | None, progress=None):
    """(points, weights, faces) of ``shape`` reduced to about ``n`` vertices (itself if smaller).

    Meshes are decimated (the surface and its vertex-area weights are kept: the samples stay
    on the surface, unlike grid-cluster centroids, which fall between the banks of a sulcus);
    clouds are pooled in grid cells, each cell carrying its points' total weight.
    """
    pts, w = np.asarray(shape.points, dtype=np.float64), np.asarray(shape.weights, dtype=np.float64)
    faces = _faces(shape)
    if n is None or len(pts) <= n:
        return pts, w, faces
    if faces is not None:
        small = shape.decimate(n, progress)
        return np.asarray(small.points, dtype=np.float64), np.asarray(small.weights, dtype=np.float64), \
            np.asarray(small.faces)
    cl = clusters(pts, w, n)
    return cl.centroids(pts), cl.cluster_weights, None


def _landmarks(landmarks) -> tuple[np.ndarray, np.ndarray] | None:
    if landmarks is None:
        return None
    src, tgt = (np.asarray(v, dtype=np.float64) for v in landmarks)
    if src.ndim != 2 or src.shape[1] != 3 or src.shape != tgt.shape or len(src) == 0:
        raise ValueError(f"landmarks must be two (L, 3) arrays of equal length; got {src.shape} and {tgt.shape}")
    if not (np.isfinite(src).all() and np.isfinite(tgt).all()):
        raise ValueError("landmarks must be finite: a landmark has NaN or infinite coordinates")
    return src, tgt


def register(source, target, config: RegistrationConfig | str | None = None,
             progress: ProgressCallback | None = None, *, landmarks=None) -> Registration:
    """Register ``source`` onto ``target`` (two :class:`shapeot.Shape`, same units).

    Parameters
    ----------
    source, target : Shape
        Meshes or point clouds (N, 3) and (M, 3), weighted by their vertex areas.
    config : RegistrationConfig or str, optional
        A configuration, or the name of a preset ("rigid", "affine", "nonrigid",
        "diffeomorphic"); default: the ``nonrigid`` preset.
    progress : callable(fraction, message) -> bool, optional
        Called often; returning False cancels (raises :class:`shapeot.core.errors.Cancelled`).
    landmarks : pair of (L, 3) arrays, optional
        Corresponding landmarks on the source and on the target (mm): carried through the
        deformation and scored (TRE before / after); they do not drive the registration.

    Returns
    -------
    Registration

    Examples
    --------
    >>> import shapeot
    >>> reg = shapeot.register(shapeot.load("lh.pial.gii"), target, "nonrigid")  # doctest: +SKIP
    >>> reg.metrics["after"]["chamfer_surface"]  # doctest: +SKIP
    """
    from shapeot.shapes import as_shape

    t_start = time.perf_counter()
    source, target = as_shape(source, "source"), as_shape(target, "target")
    if config is None:
        config = RegistrationConfig.from_preset("nonrigid")
    elif isinstance(config, str):
        config = RegistrationConfig.from_preset(config)
    from shapeot.ot.device import resolve_device

    # "auto" -> the GPU when there is one; every stage then gets the same concrete device
    config = dataclasses.replace(config, device=str(resolve_device(config.device)))
    if source.units != target.units:
        raise ValueError(f"source is in {source.units} and target in {target.units}; convert one first "
                         f"(shape.to_units('{target.units}'), --to-units {target.units})")
    marks = _landmarks(landmarks)
    prog = Progress(progress)
    timings: dict[str, float] = {}
    history: list[dict] = []
    prog(0.0, "normalising")

    norm, denorm, scale = _normalisers(source, target, config.normalise)
    unit = 1.0 if config.normalise else scale  # lengths of the configuration are multiples of this
    prog(0.01, "reducing to the working resolution")
    xw, a, src_faces = _working(source, config.working_points,
                                lambda f: prog(0.01 + 0.005 * f, "reducing the source to the working resolution"))
    yw, b, tgt_faces = _working(target, config.working_points,
                                lambda f: prog(0.015 + 0.005 * f, "reducing the target to the working resolution"))
    x, y = norm.apply(xw), denorm.inverse().apply(yw)
    ot = dict(scaling=config.scaling, backend=config.backend, device=config.device)

    t = time.perf_counter()
    pre = LinearMap.identity()
    if config.prealign is not None:
        cs, ct = clusters(x, a, config.prealign_points), clusters(y, b, config.prealign_points)
        fs, ftg = clusters(x, a, config.prealign_refine_points), clusters(y, b, config.prealign_refine_points)
        fine = (fs.centroids(x), fs.cluster_weights, ftg.centroids(y), ftg.cluster_weights)
        pre = prealign_points(cs.centroids(x), cs.cluster_weights, ct.centroids(y), ct.cluster_weights,
                              kind=config.prealign, starts=config.prealign_starts,
                              blurs=tuple(s * unit for s in config.prealign_blurs),
                              iterations=config.prealign_iterations,
                              reach=None if config.prealign_reach is None else config.prealign_reach * unit,
                              progress=prog.span(0.02, 0.2), history=history, tol=1e-4 * unit, fine=fine, **ot)
    timings["prealign"] = time.perf_counter() - t
    moved = pre.apply(x)

    t = time.perf_counter()
    maps, last = [], None
    reach = effective_reach(config, src_faces is None or tgt_faces is None)
    reach = None if reach is None else reach * unit
    if config.model is not None:
        spacing = max(_spacing(moved), _spacing(y))
        maps, moved, last = nonrigid_levels(moved, a, y, b, model=config.model, levels=config.levels, scale=unit,
                                            spacing=spacing, faces=src_faces, centre_cell=config.centre_cell,
                                            reach=reach, gamma=config.lddmm_gamma, n_steps=config.lddmm_steps,
                                            fit_iterations=config.fit_iterations, progress=prog.span(0.2, 0.85),
                                            history=history, target_faces=tgt_faces,
                                            min_blur=config.min_blur_spacings,
                                            min_width=config.min_width_spacings, **ot)
    timings["nonrigid"] = time.perf_counter() - t

    t = time.perf_counter()
    if config.model is not None and config.finetune_iterations > 0:
        # Same floors as the levels (see nonrigid_levels): finer would fit one sampling to the other.
        ft = finetune_map(moved, a, y, b, model=config.model, n_points=config.finetune_points,
                          n_control=config.finetune_control_points,
                          blur=max(config.finetune_blur * unit, config.min_blur_spacings * spacing),
                          width=max(config.finetune_width * unit, config.min_width_spacings * spacing), gamma=config.finetune_gamma, reach=reach,
                          n_steps=config.lddmm_steps, iterations=config.finetune_iterations,
                          progress=prog.span(0.85, 0.95), history=history, **ot)
        moved = ft.apply(moved)
        maps.append(ft)
        last = None  # the last OT plan no longer describes the final positions
    timings["finetune"] = time.perf_counter() - t

    deformation = Composition((norm, pre, *maps, denorm))
    prog(0.9, "moving every vertex")
    full = len(xw) == source.n_points
    warped_points = denorm.apply(moved) if full else _apply_in_blocks(
        deformation, np.asarray(source.points), lambda f: prog(0.9 + 0.03 * f, "moving every vertex"))
    displacement = warped_points - np.asarray(source.points)
    prealign_world = denorm.compose(pre).compose(norm).matrix
    warped = source.with_points(warped_points, weights=source.weights, name=f"{source.name} registered",
                                point_data={**dict(source.point_data), "displacement": displacement})
    prog(0.93, "correspondences: closest points on the target")
    correspondences = _correspondences(source, warped_points, target, last if full else None, denorm,
                                       check=lambda: prog(0.93, "correspondences: closest points on the target"))
    moved_marks = deformation.apply(marks[0]) if marks is not None else None

    t = time.perf_counter()
    prog(0.95, "measuring")
    metrics = {}
    if config.compute_metrics:
        from .report import registration_metrics

        metrics = registration_metrics(source, target, warped, deformation, marks, moved_marks, scale,
                                       check=lambda what: prog(0.95, f"measuring: {what}"), prealign=prealign_world)
    timings["metrics"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    prog(1.0, "done")
    reg = Registration(source, target, prealign_world, deformation, warped, displacement, correspondences,
                       metrics, history, config, moved_marks, timings, scale)
    # The pose and the shape change apart, and the signed normal displacement, as point data.
    parts = {"prealign_displacement": reg.prealign_displacement, "nonrigid_displacement": reg.nonrigid_displacement}
    normal = reg.normal_displacement
    if normal is not None:
        parts["normal_displacement"] = normal
    return dataclasses.replace(reg, warped=warped.replace(point_data={**dict(warped.point_data), **parts}))


def _apply_in_blocks(deformation, points: np.ndarray, progress, block: int = 16384) -> np.ndarray:
    """deformation.apply over blocks of rows, reporting (and checking Cancel) between blocks."""
    out = np.empty_like(points)
    for s in range(0, len(points), block):
        progress(s / len(points))
        out[s:s + block] = deformation.apply(points[s:s + block])
    return out


def _correspondences(source, warped_points: np.ndarray, target, last, denorm: LinearMap, check=lambda: None):
    """Per source vertex: matched target point, target index, mass (see ``Registration``).

    With the last OT plan at full resolution: its barycentric targets and strongest partners.
    Otherwise (working resolution, fine-tuning): the closest point of the target's surface to
    the warped vertex (the nearest target vertex for clouds) and the nearest target vertex.
    """
    from scipy.spatial import cKDTree

    from shapeot.matching import Correspondences

    tree = cKDTree(np.asarray(target.points))
    n = len(warped_points)
    if last is not None and len(last.targets) == n:
        tp = denorm.apply(last.targets)
        if last.result.plan.shape[1] == target.n_points:
            idx = last.result.plan.top_k(1)[0][:, 0].cpu().numpy().astype(np.int64)
        else:  # target clusters dropped massless vertices: fall back to the nearest vertex
            idx = tree.query(tp)[1].astype(np.int64)
        return Correspondences(tp, idx, last.masses.copy(), tp - np.asarray(source.points), last.result)
    _, idx = tree.query(warped_points)
    if target.faces is not None and len(target.faces):
        from shapeot.metrics import closest_points_on_surface

        tp = closest_points_on_surface(warped_points, np.asarray(target.points), np.asarray(target.faces),
                                       check=check)[0]
    else:
        tp = np.asarray(target.points)[idx]
    mass = np.array(source.weights)  # no plan at full resolution: each vertex carries its own area
    return Correspondences(tp, idx.astype(np.int64), mass, tp - np.asarray(source.points), None)
