r"""Non-rigid stage: coarse-to-fine OT correspondences projected onto smooth deformations.

At each level, the moving source and the target are reduced to about ``level.points`` weighted
points, matched by entropic OT at ``level.blur``, and the barycentric targets are projected onto
a smooth deformation of width ``level.width``:

* ``spline``: kernel smoothing of the displacements, weighted by the plan's masses
  (:func:`shapeot.deform.smooth_displacement`), as in the robust-OT registration of Shen, Feydy
  et al. (NeurIPS 2021);
* ``lddmm``: the momenta at ``level.control_points`` control points whose geodesic shooting best
  carries the points onto their targets, min_p sum_i m_i |phi_p(x_i) - T_i|^2 / sum m + gamma H(q, p)
  (Durrleman et al., NeuroImage 2014), by L-BFGS through the shooting, so every level, and
  their composition, is a diffeomorphism.

Each level's map acts on the output of the previous one; the stage returns the list of maps.

A level with ``points=None`` matches every vertex. On the 10k-vertex synthetic brains this is
what the accurate schedule of the ``nonrigid`` preset rests on: grid-cluster centroids of a
folded surface lie between the banks of the sulci, at places that differ between the warped
source's cells and the target's, and the tangential bias of OT between two such samplings
survives the finer levels as patches of sliding along the folds (3 mm over ~500 vertices of
the temporal lobe; benchmarks/register.py). Matching the vertices themselves at the middle
level removed it.

Normals (optional, ``Level.normals`` > 0, meshes only): the points are matched in 6-D as
(x, alpha n), with n the unit (area-weighted, cluster-averaged) normals of the current warped
source and of the target, so the OT cost is |x - y|^2 + alpha^2 |n_x - n_y|^2 and the two
banks of a sulcus (opposite normals) are 2 alpha apart even where they touch. This is the
oriented-normal ("current"/varifold-like) data term of surface matching (Vaillant & Glaunès,
IPMI 2005; Charon & Trouvé, SIAM J. Imaging Sci. 2013) used as a ground cost, as in Feydy's
thesis (2020, OT on position-normal pairs). Large 6-D solves use the multiscale engine (the
pairs lie on a 2-D surface in 6-D, so its cells stay few; its pruning bounds hold in any
dimension). Target normals are flipped globally if the two meshes are oriented oppositely. Where
either side is a point cloud, normals are estimated by local PCA and compared without their sign
through the projectors n n^T (9-D). The ``nonrigid`` preset matches with normals (alpha 0.2) at
every level.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from shapeot.core.pooling import clusters
from shapeot.core.progress import Progress
from shapeot.deform import LDDMM, KernelSpline, max_strain, smooth_displacement
from shapeot.deform.kernels import gaussian
from shapeot.deform.lddmm import hamiltonian, shoot
from shapeot.shapes.geometry import vertex_areas, vertex_normals

from .config import Level, RegistrationConfig
from .history import HistoryEntry
from .otstep import OTMatch, ot_match, to_tensor

if TYPE_CHECKING:
    from .stages import WorkingState

__all__ = ["NonrigidStage", "effective_reach", "fit_lddmm", "injective_steps", "MAX_STEP_STRAIN"]

#: Largest strain |Dv|_2 one spline step may have; a larger one is split into Euler steps of v/n.
#: Below 1 a step x -> x + v(x) cannot fold; 0.5 leaves room for where the field was not sampled.
MAX_STEP_STRAIN = 0.5


def fit_lddmm(x: np.ndarray, targets: np.ndarray, masses: np.ndarray, control_points: np.ndarray, *, width: float,
              gamma: float, n_steps: int, iterations: int, device: str, check=lambda: None) -> LDDMM:
    """Momenta at ``control_points`` (K, 3) whose shooting carries x (N, 3) onto ``targets``.

    Minimises sum_i m_i |phi(x_i) - T_i|^2 / sum_i m_i + gamma H(q, p) with L-BFGS through the
    geodesic shooting (autograd). The start is the kernel ridge regression of the smoothed
    displacement at the control points, p0 = (K(q, q) + lam I)^-1 u(q), which is close to the
    optimum for small deformations. ``check()`` runs at every L-BFGS evaluation (it raises to
    cancel).
    """
    import torch

    dt = torch.float64
    xt, tt = to_tensor(x, device, dt), to_tensor(targets, device, dt)
    w = to_tensor(masses / masses.sum(), device, dt)
    q = to_tensor(control_points, device, dt)
    with torch.no_grad():
        u = torch.as_tensor(smooth_displacement(x, targets, masses, width).apply(control_points) - control_points,
                            dtype=dt, device=device)
        kqq = gaussian(q, q, width)
        p0 = torch.linalg.solve(kqq + 1e-2 * torch.eye(len(q), dtype=dt, device=device), u)
    p = p0.contiguous().clone().requires_grad_(True)  # solve() returns column-major; L-BFGS needs views
    opt = torch.optim.LBFGS([p], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-12)

    def closure():
        check()
        opt.zero_grad()
        moved = shoot(q, p, width, n_steps, xt)[2]
        loss = (w * (moved - tt).pow(2).sum(1)).sum() + gamma * hamiltonian(q, p, width)
        loss.backward()
        return loss

    opt.step(closure)
    return LDDMM(control_points.copy(), p.detach().cpu().numpy(), float(width), int(n_steps))


def _steps_for(strain: float, least: int = 1) -> int:
    """Steps (at least ``least``) that keep each one's strain at most MAX_STEP_STRAIN."""
    return max(least, int(np.ceil(strain / MAX_STEP_STRAIN)))


def injective_steps(step: KernelSpline, points: np.ndarray) -> tuple[KernelSpline, int, float]:
    """(v / n, n, L): a spline step x -> x + v(x) split so that it cannot fold.

    L is the largest strain |Dv|_2 at the spline's centres and ``points`` (:func:`max_strain`).
    Where L >= 1 the step could turn space over; it becomes n = ceil(L / MAX_STEP_STRAIN) Euler
    steps of v / n, i.e. the flow of the stationary velocity field v (Arsigny et al., MICCAI
    2006; Vercauteren et al., diffeomorphic demons, NeuroImage 2009), each step injective. Apply
    the returned spline n times.
    """
    strain = max_strain(step, points)
    n = _steps_for(strain)
    if n > 1:
        step = KernelSpline(step.centres, step.vectors / n, step.width, step.masses)
    return step, n, strain


def _cluster_normals(cl, normals: np.ndarray) -> np.ndarray:
    """(K, 3) unit mean normal of each cluster (weights of the clusters' members)."""
    m = cl.centroids(normals)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-300)


def _cloud_normals(points: np.ndarray, k: int = 16) -> np.ndarray:
    """(N, 3) unit normals of a point cloud, unoriented: the least-variance direction of each
    point's k nearest neighbours (local PCA; Hoppe et al., "Surface reconstruction from
    unorganized points", SIGGRAPH 1992). Memory O(N k)."""
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    _, idx = cKDTree(pts).query(pts, k=int(min(k, len(pts))))
    nb = pts[idx]
    nb -= nb.mean(axis=1, keepdims=True)
    return np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb))[1][:, :, 0]


def _line_features(n: np.ndarray) -> np.ndarray:
    """(N, 6) vectors F(n) of the projectors n n^T, with |F(n) - F(m)|^2 = |n n^T - m m^T|_F^2 =
    2 - 2 (n.m)^2: a cost on unoriented normals (the sign of n does not matter), as in the
    varifold representation of shapes (Charon & Trouvé 2013). Averages over a cluster stay
    meaningful where averaged unoriented normals would cancel."""
    r = np.sqrt(2.0)
    return np.stack([n[:, 0] ** 2, n[:, 1] ** 2, n[:, 2] ** 2,
                     r * n[:, 0] * n[:, 1], r * n[:, 0] * n[:, 2], r * n[:, 1] * n[:, 2]], axis=1)


def _orientation(x: np.ndarray, nx: np.ndarray, wx: np.ndarray, y: np.ndarray, ny: np.ndarray) -> float:
    """+1 if the two meshes' normals agree where they are closest (area-weighted vote), else -1."""
    from scipy.spatial import cKDTree

    j = cKDTree(y).query(x)[1]
    return 1.0 if float((wx * (nx * ny[j]).sum(1)).sum()) >= 0 else -1.0


def effective_reach(config: RegistrationConfig, cloud: bool) -> float | None:
    """The non-rigid stage's OT reach (fraction of the scale): ``config.reach``, else
    ``config.cloud_reach`` when either shape is a point cloud, else None (balanced)."""
    if config.reach is not None:
        return config.reach
    return config.cloud_reach if cloud else None


class _Features:
    """The normals part of the 6-D (two meshes: oriented normals) or 9-D (a point cloud on either
    side: the projectors of unoriented normals by local PCA) points that a level matches."""

    def __init__(self, state: WorkingState):
        self.faces = state.source_faces
        self.oriented = state.source_faces is not None and state.target_faces is not None
        y, tf = state.y, state.target_faces
        self.ny = vertex_normals(y, tf) if tf is not None else _cloud_normals(y)
        if self.oriented:
            self.ny = self.ny * _orientation(state.x, vertex_normals(state.x, self.faces), state.a, y, self.ny)

    def source_normals(self, p: np.ndarray) -> np.ndarray:
        return vertex_normals(p, self.faces) if self.faces is not None else _cloud_normals(p)

    def of(self, cl, n: np.ndarray, alpha: float) -> np.ndarray:
        if self.oriented:
            return alpha * _cluster_normals(cl, n)
        # |F(n) - F(m)|^2 ~ 2 theta^2 for a small angle theta, |n - m|^2 ~ theta^2: same alpha, same price
        return alpha / np.sqrt(2.0) * cl.centroids(_line_features(n))


class NonrigidStage:
    """The coarse-to-fine levels: OT correspondences projected onto smooth maps (module docstring).

    Lengths of the levels are multiplied by the state's ``unit`` and kept above the floors
    ``min_blur_spacings`` / ``min_width_spacings`` times the sampling spacing: finer, OT would
    match one sampling onto the other (tangential noise) and the spline would follow it. When
    the source is a mesh, the moving source is weighted by the vertex areas of its *current*
    (warped) mesh at every round: the warp changes areas (by +-30 % for the synthetic brains),
    and balanced OT between the original areas and the target's would have to slide mass
    tangentially to make up the difference. Appends the maps to ``state.maps`` and leaves the
    last match in ``state.last`` when it ran at full resolution.
    """

    name = "nonrigid"
    share = 0.65

    def __init__(self, config: RegistrationConfig):
        self.config = config

    def run(self, state: WorkingState, progress: Progress) -> WorkingState:
        c, u = self.config, state.unit
        spacing = state.spacing()
        reach = effective_reach(c, state.cloud)
        reach = None if reach is None else reach * u
        features = _Features(state) if any(lv.normals > 0 for lv in c.levels) else None
        points0 = state.x.copy()  # clusters of the pre-aligned vertices: stable labels
        total, done = sum(lv.iterations for lv in c.levels), 0
        state.last = None
        for li, lv in enumerate(c.levels):
            level = _Level(lv, li, points0, state, features, u, spacing, c)
            for it in range(lv.iterations):
                round_progress = progress.span(done / total, (done + 0.8) / total)
                match = self._round(state, level, it, reach, round_progress)
                done += 1
                last_round = li == len(c.levels) - 1 and it == lv.iterations - 1
                state.last = match if (level.full and last_round) else None
                progress(done / total, f"non-rigid: level {li + 1}/{len(c.levels)}, round {it + 1}/{lv.iterations}")
        return state

    def _round(self, state: WorkingState, level: _Level, it: int, reach: float | None, progress: Progress) -> OTMatch:
        """One OT match and one fit; moves ``state.x`` and appends the step's maps."""
        xs, a, xm = level.moving(state)
        match = ot_match(xm, a, level.ym, level.bt, blur=level.blur, reach=reach, engine=self.config.engine,
                         progress=progress.with_message("non-rigid: OT match"))
        match = match._replace(targets=match.targets[:, :3])  # positions of the 6-D / 9-D targets
        resid = float((match.masses * ((match.targets - xs) ** 2).sum(1)).sum() / match.masses.sum())
        progress(1.0, "non-rigid: smoothing")
        step, substeps, strain = self._fit(xs, a, match, level, progress)
        state.history.append(HistoryEntry("nonrigid", it, resid, level=level.index, blur=level.blur,
                                          marginal_error=match.marginal_error, points=len(xs), strain=strain,
                                          substeps=substeps))
        for _ in range(substeps):
            state.x = step.apply(state.x)
            state.maps.append(step)
        return match

    def _fit(self, xs, a, match: OTMatch, level: _Level, progress: Progress):
        """(map, times to apply it, largest strain) fitted to the OT targets."""
        c = self.config
        if (level.spec.model or c.model) == "spline":
            step = smooth_displacement(xs, match.targets, match.masses, level.width,
                                       cell=c.centre_cell * level.width if c.centre_cell > 0 else None)
            step, substeps, strain = injective_steps(step, xs)
            return step, substeps, strain
        qc = clusters(xs, a, level.spec.control_points)
        step = fit_lddmm(xs, match.targets, match.masses, qc.centroids(xs), width=level.width,
                         gamma=c.lddmm.gamma, n_steps=c.lddmm.steps, iterations=c.lddmm.fit_iterations,
                         device=c.engine.device, check=lambda: progress(1.0, "non-rigid: LDDMM fit"))
        # The flow is a diffeomorphism, its integration only while dt |Dv| < 1: a 5k-vertex
        # frog lung pair reached strain ~10 with 6 steps (triangles turned over). More steps of
        # the same geodesic where the sampled strain of v_0 asks for them.
        strain = max_strain(step, xs)
        steps = _steps_for(strain, c.lddmm.steps)
        if steps > c.lddmm.steps:
            step = LDDMM(step.control_points, step.momenta, step.width, steps)
        return step, steps // c.lddmm.steps, strain


class _Level:
    """One level's fixed parts: the clusterings, the target points (with their normals), the
    blur and the width (in working units, above their floors)."""

    def __init__(self, spec: Level, index: int, points0: np.ndarray, state: WorkingState, features, unit: float,
                 spacing: float, config: RegistrationConfig):
        self.spec, self.index = spec, index
        self.src = clusters(points0, state.a, spec.points)
        tgt = clusters(state.y, state.b, spec.points)
        yt, self.bt = tgt.centroids(state.y), tgt.cluster_weights
        self.full = spec.points is None or spec.points >= len(points0)
        self.features = features
        self.alpha = spec.normals * unit if features is not None else 0.0  # > 0: match (x, alpha n)
        self.ym = np.hstack([yt, features.of(tgt, features.ny, self.alpha)]) if self.alpha > 0 else yt
        self.blur = max(spec.blur * unit, config.min_blur_spacings * spacing)
        self.width = max(spec.width * unit, config.min_width_spacings * spacing)
        self.faces = state.source_faces

    def moving(self, state: WorkingState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(centroids of the moving source, their weights, the points matched: with normals)."""
        if self.faces is not None:
            self.src = self.src.reweighted(vertex_areas(state.x, self.faces))
        xs, a = self.src.centroids(state.x), self.src.cluster_weights
        if self.alpha <= 0:
            return xs, a, xs
        return xs, a, np.hstack([xs, self.features.of(self.src, self.features.source_normals(state.x), self.alpha)])
