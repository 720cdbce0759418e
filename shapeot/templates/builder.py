r"""``shapeot.template``: a population template as a free-support Wasserstein barycenter.

Given subjects mu_s (surfaces with their vertex-area measures) and weights w_s summing to 1, the
template T minimises sum_s w_s d(T, mu_s)^2 over shapes T = phi_s^{-1}(mu_s). With the
registration phi_s of T onto mu_s computed by optimal transport, the minimiser is a fixed point
of the barycentric projection (Agueh & Carlier, "Barycenters in the Wasserstein space", SIAM J.
Math. Anal. 43(2), 2011; Cuturi & Doucet, "Fast computation of Wasserstein barycenters", ICML
2014; Álvarez-Esteban, del Barrio, Cuesta-Albertos & Matrán, "A fixed-point approach to
barycenters in Wasserstein space", J. Math. Anal. Appl. 441, 2016):

.. math::

    x_i^{(k+1)} = \sum_s w_s\, \varphi_s^{(k)}\big(x_i^{(k)}\big),

the free-support update that moves every template vertex x_i to the weighted mean of its images
on the subjects. Because the template is the mean of its own images, the mean deformation from
the template to the population vanishes at convergence: the template is not biased towards
any subject (Joshi, Davis, Jomier & Gerig, "Unbiased diffeomorphic atlas construction for
computational anatomy", NeuroImage 23, 2004).

Steps (``docs/templates.md``):

1. generalised Procrustes analysis with OT correspondences (:mod:`.procrustes`; Gower 1975):
   robust alignment of every subject to a reference, the medoid by Sinkhorn divergences,
   then rounds of "align every subject to the mean, update the mean";
2. T^(0) = the medoid subject's mesh in that frame;
3. iterate: register T^(k) onto every subject (``shapeot.register``; subjects are independent,
   so they run through the executor: in-process or Dask), move each vertex to the weighted mean
   of its images, smooth the update with a Gaussian kernel (the regularisation), stop when the
   template moves less than ``tolerance_mm`` (area-weighted RMS);
4. statistics: the principal modes of the corresponded vertex positions (:mod:`.pca`) and each
   subject's distance to the template.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from shapeot.core.executors import open_executor
from shapeot.core.progress import Progress
from shapeot.registration.history import HistoryEntry
from shapeot.shapes.geometry import vertex_normals

from .config import TemplateConfig
from .folder import LoadedFolder, TemplateInputError, load_folder
from .pca import principal_modes
from .procrustes import cloud, generalised_procrustes, mean_spacing, medoid_index, rms_radius
from .result import Template
from .tasks import aligned, apply_matrix, medoid_row, register_subject, rough_alignment

__all__ = ["template"]


def _subjects(shapes) -> list:
    if isinstance(shapes, (str, os.PathLike)):
        shapes = load_folder(shapes)
    if isinstance(shapes, LoadedFolder):
        shapes = shapes.shapes
    try:
        subjects = list(shapes)
    except TypeError:
        raise TemplateInputError(f"shapes must be a sequence of shapeot.Shape, a folder or load_folder()'s "
                                 f"result; got {type(shapes).__name__}") from None
    for i, s in enumerate(subjects):
        if not hasattr(s, "points") or not hasattr(s, "weights"):
            raise TemplateInputError(f"shapes[{i}] is a {type(s).__name__}, not a shapeot.Shape; load files with "
                                     "shapeot.load or shapeot.load_folder")
    if len(subjects) < 2:
        raise TemplateInputError(f"a template needs at least two shapes; got {len(subjects)}")
    units = {s.units for s in subjects}
    if len(units) > 1:
        listing = ", ".join(f"{s.name or i} in {s.units}" for i, s in enumerate(subjects))
        raise TemplateInputError(f"the shapes are in different units ({listing}); convert them to one unit "
                                 "first (shape.replace(points=..., units=...))")
    if not any(s.faces is not None and len(s.faces) for s in subjects):
        raise TemplateInputError("a template needs at least one triangle mesh among the shapes (its faces "
                                 "become the template's); all of them are point clouds")
    return subjects


def _unique_names(subjects: list) -> tuple:
    names, seen = [], {}
    for i, s in enumerate(subjects):
        base = s.name or f"subject_{i + 1:02d}"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return tuple(names)


def _weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise TemplateInputError(f"weights must be {n} finite non-negative numbers (one per shape) with a "
                                 f"positive sum; got {np.asarray(weights).tolist()}")
    return w / w.sum()


def _vertex_normals(shape) -> np.ndarray:
    """(N, 3) unit vertex normals (:func:`~shapeot.shapes.geometry.vertex_normals`); zeros for a
    point cloud."""
    if shape.faces is None or len(shape.faces) == 0:
        return np.zeros_like(np.asarray(shape.points, dtype=np.float64))
    return vertex_normals(shape.points, shape.faces)


def _surface_distance(a, b) -> float:
    """Symmetric mean point-to-surface distance over all vertices (mm; point-to-point for clouds)."""
    from shapeot.metrics import directed_distances

    out = 0.0
    for x, y in ((a, b), (b, a)):
        pts = np.asarray(x.points)
        surface = y.faces is not None and len(y.faces) > 0
        out += 0.5 * float(directed_distances(pts, y, surface=surface).mean())
    return out


def smooth_field(points: np.ndarray, field: np.ndarray, areas: np.ndarray, width: float) -> np.ndarray:
    r"""Gaussian kernel smoothing of a per-vertex field (the regularisation of the template update).

    .. math::  \tilde u_i = \frac{\sum_j K_{ij}\, a_j u_j}{\sum_j K_{ij}\, a_j},\qquad
               K_{ij} = \exp\big(-|x_i - x_j|^2 / (2 s^2)\big)\ \text{for } |x_i - x_j| \le 3 s,

    the area-weighted Nadaraya-Watson average over the neighbours within three widths (a KD-tree
    sparse distance matrix: O(N k) memory for k neighbours, never N x N).

    Parameters
    ----------
    points : (N, 3) float array, mm
    field : (N, D) float array (a displacement, mm)
    areas : (N,) float array, the vertex areas (any scale)
    width : float, the kernel's standard deviation s, mm

    Returns
    -------
    (N, D) float array
    """
    from scipy.sparse import diags
    from scipy.spatial import cKDTree

    tree = cKDTree(points)
    k = tree.sparse_distance_matrix(tree, 3.0 * width, output_type="coo_matrix").tocsr()
    k.data = np.exp(-(k.data ** 2) / (2.0 * width * width))
    k.setdiag(1.0)  # K_ii = 1 whether or not the zero self-distance was stored
    k = k @ diags(np.asarray(areas, dtype=np.float64))
    return (k @ np.asarray(field, dtype=np.float64)) / np.asarray(k.sum(axis=1)).reshape(-1, 1)


class _Reporter:
    """Turns the executor's per-job reports into one progress fraction and message."""

    def __init__(self, prog: Progress, names: Sequence[str], what: str):
        self.prog, self.names, self.what = prog, names, what
        self.partial: dict[int, float] = {}

    def __call__(self, i: int, fraction: float, message: str) -> None:
        self.partial[i] = max(self.partial.get(i, 0.0), min(max(fraction, 0.0), 1.0))
        done = sum(1 for v in self.partial.values() if v >= 1.0)
        total = len(self.names)
        state = "done" if fraction >= 1.0 else message
        self.prog(sum(self.partial.values()) / total,
                  f"{self.what}: {self.names[i]} {state} ({done}/{total} subjects)")


def template(shapes, config: TemplateConfig | None = None, executor=None,
             progress: Callable[[float, str], bool] | None = None, *, weights=None) -> Template:
    """Build a population template from shapes (module docstring for the algorithm).

    Parameters
    ----------
    shapes : sequence of Shape, LoadedFolder, or a folder path
        The subjects (meshes or point clouds, same units; at least two, one a mesh). A path is
        loaded with :func:`shapeot.load_folder`.
    config : TemplateConfig, optional
        Default: ``TemplateConfig()`` (similarity Procrustes, ``nonrigid`` registrations, at most
        4 iterations).
    executor : None, "local", a Dask scheduler address, a ``distributed.Client`` or an executor
        Where the per-subject work runs (:mod:`.executor`): None in this process; "local" a new
        ``LocalCluster`` with one worker per core; "tcp://host:port" an existing cluster. The
        subjects are sent to the workers once per run. The result does not depend on it (to
        float tolerance).
    progress : callable(fraction, message) -> bool, optional
        Called as subjects finish (and more often in-process); returning False cancels (raises
        :class:`shapeot.core.errors.Cancelled`).
    weights : (S,) array-like, optional
        Non-negative subject weights (normalised to sum 1); default equal.

    Returns
    -------
    Template
        ``shape`` (the template mesh, N vertices, mm), ``registrations`` (template -> each
        subject), ``modes`` (mean, principal modes, variances), ``distances``, ``history``.

    Raises
    ------
    TemplateInputError
        (a ``ValueError``) for fewer than two shapes, mixed units, no mesh, bad weights.

    Examples
    --------
    >>> import shapeot
    >>> folder = shapeot.load_folder("sample_meshes/cohort", pattern="subject_*.gii")  # doctest: +SKIP
    >>> tpl = shapeot.template(folder, shapeot.TemplateConfig(iterations=3))          # doctest: +SKIP
    >>> tpl.shape.save("template.vtp"); tpl.modes.explained_variance_ratio            # doctest: +SKIP
    """
    t_start = time.perf_counter()
    config = TemplateConfig() if config is None else config
    if not isinstance(config, TemplateConfig):
        raise TemplateInputError(f"config must be a shapeot.TemplateConfig; got {type(config).__name__}")
    subjects = _subjects(shapes)
    names = _unique_names(subjects)
    w = _weights(weights, len(subjects))
    reg_config = config.registration_config()
    prog = Progress(progress)
    history: list[dict] = []
    timings: dict[str, float] = {}
    n = len(subjects)
    prog(0.0, f"template of {n} subjects")

    with open_executor(executor, retries=config.retries) as ex:
        handles = ex.scatter(subjects)  # once per run: every later task refers to these

        # 1. Generalised Procrustes analysis, medoid.
        t = time.perf_counter()
        matrices, medoid = _procrustes(subjects, handles, w, config, ex, prog.span(0.0, 0.15), names, history)
        timings["procrustes"] = time.perf_counter() - t

        # 2-3. Barycenter iterations from the medoid.
        t = time.perf_counter()
        current = aligned(subjects[medoid], matrices[medoid]).replace(name="template", source=None)
        scale = rms_radius(current.points, current.weights)
        width = max(config.smoothing * scale, mean_spacing(np.asarray(current.points))) if config.smoothing else 0.0
        converged, regs, source = False, None, current
        span = prog.span(0.15, 0.95)
        for k in range(config.iterations):
            it_prog = span.span(k / config.iterations, (k + 1) / config.iterations)
            t_it = time.perf_counter()
            shared = ex.put(current)
            jobs = [(shared, handles[s], matrices[s], reg_config) for s in range(n)]
            regs = ex.map(register_subject, jobs,
                          _Reporter(it_prog, names, f"iteration {k + 1}/{config.iterations}"))
            images = np.stack([np.asarray(r.warped.points) for r in regs])  # (S, N, 3)
            new_points = np.tensordot(w, images, axes=1)
            step = new_points - np.asarray(current.points)
            if width > 0:
                step = smooth_field(np.asarray(current.points), step, np.asarray(current.weights), width)
                new_points = np.asarray(current.points) + step
            move = np.linalg.norm(step, axis=1)
            normal = np.abs((step * _vertex_normals(current)).sum(1))
            area = np.asarray(current.weights)
            deform = np.sqrt(((images - np.asarray(current.points)) ** 2).sum(2) @ area)
            source = current
            current = current.with_points(new_points, weights=None)
            history.append(HistoryEntry("template", k, float(np.sqrt(area @ normal ** 2)), extra={
                "move_rms_mm": float(np.sqrt(area @ move ** 2)), "move_max_mm": float(move.max()),
                "deformation_rms_mm": float(w @ deform), "seconds": time.perf_counter() - t_it}))
            if history[-1].value < config.tolerance_mm:
                converged = True
                break
        timings["iterations"] = time.perf_counter() - t
        executor_name = ex.name

    # 4. Statistics.
    t = time.perf_counter()
    prog(0.95, "statistics")
    images = np.stack([np.asarray(r.warped.points) for r in regs])
    modes = principal_modes(images, w, np.asarray(source.weights), config.n_modes)
    registrations = tuple(dataclasses.replace(r, source=source, target=aligned(subjects[s], matrices[s]))
                          for s, r in enumerate(regs))
    distances = {"deformation_rms": np.sqrt(((images - np.asarray(source.points)) ** 2).sum(2)
                                            @ np.asarray(source.weights))}
    if config.compute_distances:
        surf, fit = np.zeros(n), np.zeros(n)
        for s, reg in enumerate(registrations):
            surf[s] = _surface_distance(current, reg.target)
            fit[s] = _surface_distance(reg.warped, reg.target)
            prog(0.95 + 0.05 * (s + 1) / n, f"distances: {names[s]}")
        distances.update(surface=surf, fit=fit)
    timings["statistics"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    prog(1.0, "done")
    return Template(current, registrations, tuple(subjects), names, w, matrices, modes, distances, medoid,
                    converged, history, config, timings, executor_name)


def _procrustes(subjects: list, handles: list, w: np.ndarray, config: TemplateConfig, ex, prog: Progress,
                names: Sequence[str], history: list) -> tuple[np.ndarray, int]:
    """(S, 4, 4) subject -> common frame maps and the medoid's index (module docstring, step 1)."""
    n = len(subjects)
    meshes = [i for i, s in enumerate(subjects) if s.faces is not None and len(s.faces)]
    ref = meshes[0]
    rough = np.tile(np.eye(4), (n, 1, 1))
    if config.procrustes is not None:
        others = [s for s in range(n) if s != ref]
        out = ex.map(rough_alignment, [(handles[s], handles[ref], config.procrustes, config.procrustes_starts)
                                       for s in others],
                     _Reporter(prog.span(0.0, 0.6), [names[s] for s in others], "pre-alignment"))
        for s, m in zip(others, out):
            rough[s] = m
    # Medoid: smallest weighted sum of Sinkhorn divergences to the others, on aligned clusterings.
    small = [cloud(s, config.medoid_points) for s in subjects]
    small = [(apply_matrix(rough[s], p), a) for s, (p, a) in enumerate(small)]
    scale = rms_radius(*small[ref])
    rows = ex.map(medoid_row, [(i, small, 0.05 * scale) for i in range(n - 1)],
                  _Reporter(prog.span(0.6, 0.75), list(names[: n - 1]), "medoid"))
    dist = np.vstack([*rows, np.zeros(n)])
    medoid = medoid_index(dist, w, meshes)
    # Re-base on the medoid, then generalised Procrustes rounds (0 rounds still normalises sizes).
    rebased = np.linalg.inv(rough[medoid]) @ rough
    if config.procrustes is None:
        return rebased, medoid
    clouds = [cloud(s, config.procrustes_points) for s in subjects]
    sizes = np.array([rms_radius(s.points, s.weights) for s in subjects])
    mats, _ = generalised_procrustes(clouds, w, rebased, medoid, kind=config.procrustes,
                                     blur=config.procrustes_blur * scale, iterations=config.procrustes_iterations,
                                     tol=1e-3 * scale, history=history, sizes=sizes, progress=prog.span(0.75, 1.0))
    return mats, medoid
