r"""``shapeot.register``: pre-alignment, non-rigid deformation and fine-tuning by optimal transport.

The three-step robust-OT registration of Shen, Feydy et al., "Accurate point cloud registration
with robust optimal transport" (NeurIPS 2021), on the OT engine :func:`shapeot.ot.solve`:

``register`` reads as normalise -> reduce -> stages -> compose -> measure:

1. normalise: centre both shapes on their area-weighted centroids and divide by the source's
   RMS radius (the ``scale``), so that every length of the configuration is relative;
2. reduce both shapes to the working resolution (below);
3. run the stages (:mod:`.stages`): pre-align by unbalanced OT + weighted Procrustes / affine
   fits, from several starting rotations (:mod:`.prealign`); deform coarse to fine, OT
   correspondences projected onto Gaussian kernel splines or LDDMM geodesic shootings
   (:mod:`.nonrigid`); fine-tune the Sinkhorn divergence + deformation energy by gradient
   descent (:mod:`.finetune`);
4. compose the maps, with the normalisation undone, into ``Registration.deformation``, and
   move every vertex;
5. measure: correspondences, metrics before and after.

Vertex areas weigh every step, so the mesh density does not bias the result.

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
from typing import NamedTuple

import numpy as np

from shapeot.core.pooling import clusters
from shapeot.core.progress import Progress, ProgressCallback, as_progress
from shapeot.deform import Composition, LinearMap
from shapeot.shapes.freesurfer import frame_of, in_frame

from .config import RegistrationConfig
from .result import Registration
from .stages import WorkingState, stages_for

__all__ = ["register"]

#: The part of the progress bar the stages share (the rest: reduction, moving, measuring).
_STAGES_SPAN = (0.02, 0.9)


def register(source, target, config: RegistrationConfig | str | None = None,
             progress: ProgressCallback | None = None, *, landmarks=None) -> Registration:
    """Register ``source`` onto ``target`` (two :class:`shapeot.Shape`, same units).

    Parameters
    ----------
    source, target : Shape or path
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
    t_start = time.perf_counter()
    source, target, config, marks = _inputs(source, target, config, landmarks)
    prog = as_progress(progress)
    prog(0.0, "normalising")
    norm = Normalisation.of(source, target, config.normalise)
    state = _reduce(source, target, norm, config, prog.span(0.01, 0.02))
    state, timings = _run_stages(state, config, prog)
    deformation = Composition((norm.forward, state.prealign, *state.maps, norm.back))
    warped, correspondences = _move(source, target, state, norm, deformation, prog)
    t = time.perf_counter()
    prog(0.95, "measuring")
    moved_marks = deformation.apply(marks[0]) if marks is not None else None
    prealign_world = norm.back.compose(state.prealign).compose(norm.forward).matrix
    metrics = {}
    if config.compute_metrics:
        from .report import registration_metrics

        metrics = registration_metrics(source, target, warped, deformation, marks, moved_marks, norm.scale,
                                       check=lambda what: prog(0.95, f"measuring: {what}"), prealign=prealign_world)
    timings["metrics"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    prog(1.0, "done")
    reg = Registration(source, target, prealign_world, deformation, warped,
                       np.asarray(warped.points) - np.asarray(source.points), correspondences, metrics,
                       state.history, config, moved_marks, timings, norm.scale)
    # The pose and the shape change apart, and the signed normal displacement, as point data.
    parts = {"prealign_displacement": reg.prealign_displacement, "nonrigid_displacement": reg.nonrigid_displacement}
    normal = reg.normal_displacement
    if normal is not None:
        parts["normal_displacement"] = normal
    return dataclasses.replace(reg, warped=warped.replace(point_data={**dict(warped.point_data), **parts}))


def _inputs(source, target, config, landmarks):
    """The shapes (paths read), the configuration (a preset's name read, the device resolved to
    one concrete device for every stage) and the landmarks, all checked."""
    from shapeot.ot.device import resolve_device
    from shapeot.shapes import as_shape

    source, target = as_shape(source, "source"), as_shape(target, "target")
    if config is None or isinstance(config, str):
        config = RegistrationConfig.from_preset(config or "nonrigid")
    elif not isinstance(config, RegistrationConfig):
        raise TypeError(f"config must be a RegistrationConfig, a preset's name or None; got {type(config).__name__} "
                        "(RegistrationConfig.from_dict reads a dict)")
    config = config.replace(engine={"device": str(resolve_device(config.engine.device))})
    if source.units != target.units:
        raise ValueError(f"source is in {source.units} and target in {target.units}; convert one first "
                         f"(shape.to_units('{target.units}'), --to-units {target.units})")
    return source, target, config, _landmarks(landmarks)


class Normalisation(NamedTuple):
    """source -> normalised frame (``forward``), normalised -> target frame (``back``), and the
    scale (mm): the RMS distance of the source's vertices to their area-weighted centroid."""

    forward: LinearMap
    back: LinearMap
    scale: float

    @classmethod
    def of(cls, source, target, normalise: bool) -> Normalisation:
        p, w = np.asarray(source.points), np.asarray(source.weights)
        cs = w @ p
        scale = float(np.sqrt(w @ ((p - cs) ** 2).sum(1)))
        if not scale > 0:
            raise ValueError("the source has a single point (zero spread): nothing to register")
        if not normalise:
            return cls(LinearMap.identity(), LinearMap.identity(), scale)
        ct = np.asarray(target.weights) @ np.asarray(target.points)
        norm = np.eye(4)
        norm[:3, :3] /= scale
        norm[:3, 3] = -cs / scale
        denorm = np.eye(4)
        denorm[:3, :3] *= scale
        denorm[:3, 3] = ct
        return cls(LinearMap(norm), LinearMap(denorm), scale)


def _reduce(source, target, norm: Normalisation, config: RegistrationConfig, prog: Progress) -> WorkingState:
    """Both shapes at the working resolution, in the normalised frame."""
    prog(0.0, "reducing to the working resolution")
    xw, a, src_faces = _working(source, config.working_points,
                                lambda f: prog(0.5 * f, "reducing the source to the working resolution"))
    yw, b, tgt_faces = _working(target, config.working_points,
                                lambda f: prog(0.5 + 0.5 * f, "reducing the target to the working resolution"))
    unit = 1.0 if config.normalise else norm.scale  # lengths of the configuration are multiples of this
    return WorkingState(norm.forward.apply(xw), a, norm.back.inverse().apply(yw), b, src_faces, tgt_faces, unit,
                        full_resolution=len(xw) == source.n_points)


def _run_stages(state: WorkingState, config: RegistrationConfig, prog: Progress) -> tuple[WorkingState, dict]:
    """Each stage on its share of the progress bar; seconds per stage."""
    stages = stages_for(config)
    lo, hi = _STAGES_SPAN
    total = sum(s.share for s in stages) or 1.0
    timings, done = {}, 0.0
    for stage in stages:
        t = time.perf_counter()
        span = prog.span(lo + (hi - lo) * done / total, lo + (hi - lo) * (done + stage.share) / total)
        state = stage.run(state, span)
        done += stage.share
        timings[stage.name] = time.perf_counter() - t
    return state, timings


def _move(source, target, state: WorkingState, norm: Normalisation, deformation, prog: Progress):
    """The warped source (every vertex moved) and its correspondences on the target."""
    prog(0.9, "moving every vertex")
    warped_points = norm.back.apply(state.x) if state.full_resolution else _apply_in_blocks(
        deformation, np.asarray(source.points), lambda f: prog(0.9 + 0.03 * f, "moving every vertex"))
    displacement = warped_points - np.asarray(source.points)
    warped = source.with_points(warped_points, weights=source.weights, name=f"{source.name} registered",
                                point_data={**dict(source.point_data), "displacement": displacement})
    # the warped surface lies in the target's space: a FreeSurfer target's frame goes with it
    warped = in_frame(warped, frame_of(target))
    prog(0.93, "correspondences: closest points on the target")
    correspondences = _correspondences(source, warped_points, target,
                                       state.last if state.full_resolution else None, norm.back,
                                       check=lambda: prog(0.93, "correspondences: closest points on the target"))
    return warped, correspondences


def _faces(shape) -> np.ndarray | None:
    """The triangles of a mesh with positive total area (to reweigh by current areas), else None."""
    if shape.faces is None or len(shape.faces) == 0:
        return None
    return np.asarray(shape.faces)


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
