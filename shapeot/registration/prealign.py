r"""OT pre-alignment: robust OT correspondences -> weighted Procrustes / affine fit, iterated.

Each round matches the moved source to the target by unbalanced OT (the reach discards parts
with no counterpart), then fits the linear map from the source to the barycentric targets with
the plan's row masses as weights (Umeyama 1991 for rigid and similarity maps, weighted least
squares for affine ones); this is the pre-alignment step of Shen, Feydy et al., "Accurate point
cloud registration with robust optimal transport" (NeurIPS 2021). Several starting rotations
(the 24 rotations of the cube about the source's centroid) escape the local minima of
symmetric shapes; the start ending with the smallest Sinkhorn divergence wins.
"""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from shapeot.core.pooling import clusters
from shapeot.core.progress import Progress
from shapeot.deform import LinearMap, fit_linear

from .config import EngineOptions, PrealignConfig
from .history import HistoryEntry
from .otstep import ot_match

if TYPE_CHECKING:
    from .stages import WorkingState

__all__ = ["cube_rotations", "PrealignStage"]


def cube_rotations() -> np.ndarray:
    """(24, 3, 3) the rotations mapping the cube onto itself (signed permutations, det +1), identity first."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            r = np.zeros((3, 3))
            r[np.arange(3), perm] = signs
            if np.linalg.det(r) > 0:
                out.append(r)
    out.sort(key=lambda r: -np.trace(r))  # identity (trace 3) first
    return np.stack(out)


def _about(rotation: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> LinearMap:
    """x -> R (x - cx) + cy as a LinearMap."""
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = cy - rotation @ cx
    return LinearMap(m)


class PrealignStage:
    """The pre-alignment stage: the linear map of ``config.model`` taking the source onto the target.

    The start search runs on ``config.points`` grid clusters of each shape, the refinement of
    the winner on ``config.refine_points`` (the accuracy of a fit is limited by the sampling it
    sees). Sets ``state.prealign`` and moves ``state.x``.
    """

    name = "prealign"
    share = 0.18

    def __init__(self, config: PrealignConfig, engine: EngineOptions):
        self.config, self.engine = config, engine

    def run(self, state: WorkingState, progress: Progress) -> WorkingState:
        c, u = self.config, state.unit
        x, a, y, b = state.x, state.a, state.y, state.b
        cs, ct = clusters(x, a, c.points), clusters(y, b, c.points)
        fs, ft = clusters(x, a, c.refine_points), clusters(y, b, c.refine_points)
        search = _Samples(cs.centroids(x), cs.cluster_weights, ct.centroids(y), ct.cluster_weights)
        fine = _Samples(fs.centroids(x), fs.cluster_weights, ft.centroids(y), ft.cluster_weights)
        fit = _Fit(self.engine, None if c.reach is None else c.reach * u, state.history)
        blurs = tuple(s * u for s in c.blurs)
        rots = cube_rotations()[:c.starts]
        m, start = _search(search, rots, blurs, c.model, fit, progress, c.keep)
        n_refine = 3 * max(1, c.iterations // 3)
        m = _refine(fine, m, start, blurs[-1], c.model, c.iterations, 1e-4 * u, fit,
                    lambda i: progress(_SEARCH_SHARE + (1 - _SEARCH_SHARE) * min(1.0, i / n_refine),
                                       f"pre-alignment: refining start {start + 1}"))
        state.prealign = m
        state.x = m.apply(x)
        return state


class _Samples(NamedTuple):
    """Weighted points of the two shapes: (x, a) moved onto (y, b)."""

    x: np.ndarray
    a: np.ndarray
    y: np.ndarray
    b: np.ndarray


class _Fit:
    """One round of the fixed point: OT-match the moved points, fit the linear map, record it."""

    def __init__(self, engine: EngineOptions, reach: float | None, history: list):
        self.engine, self.reach, self.history = engine, reach, history
        self.steps: dict[str, int] = {}

    def round(self, pts: _Samples, m: LinearMap, blur: float, kind: str, *, phase: str, start: int
              ) -> tuple[LinearMap, float]:
        match = ot_match(m.apply(pts.x), pts.a, pts.y, pts.b, blur=blur, reach=self.reach, engine=self.engine)
        step = self.steps.get(f"{phase}{start}", 0)
        self.steps[f"{phase}{start}"] = step + 1
        self.history.append(HistoryEntry("prealign", step, match.value, phase=phase, start=start, blur=blur))
        return fit_linear(pts.x, match.targets, match.masses, kind), match.value

    def score(self, pts: _Samples, m: LinearMap, blur: float) -> float:
        """The debiased Sinkhorn divergence of the moved points: a start's final score."""
        return ot_match(m.apply(pts.x), pts.a, pts.y, pts.b, blur=blur, reach=self.reach, engine=self.engine,
                        debias=True).value


def _search(pts: _Samples, rots: np.ndarray, blurs: tuple, kind: str, fit: _Fit, progress: Progress,
            keep: int | None) -> tuple[LinearMap, int]:
    """The best start: each rotation about the centroids, a few annealed rounds (rigid maps for
    an affine model: 12 free parameters overfit a poor start), scored by the divergence.

    Successive halving (Jamieson & Talwalkar, AISTATS 2016): a round's OT value measures the
    map the previous round fitted, so from the second round on only the ``keep`` lowest go on,
    and only the best third of those are scored. On the sample brains and the frog organs every
    start but the winner ends 30 to 400 times higher, far from any threshold.
    """
    cx, cy = pts.a @ pts.x / pts.a.sum(), pts.b @ pts.y / pts.b.sum()
    search_kind = "rigid" if kind == "affine" else kind
    maps = {s: _about(rot, cx, cy) for s, rot in enumerate(rots)}
    plan = _search_plan(len(rots), len(blurs), keep)
    total, done = sum(plan) + plan[-1], 0
    for k, blur in enumerate(blurs):
        values = {}
        for s in list(maps):
            maps[s], values[s] = fit.round(pts, maps[s], blur, search_kind, phase="search", start=s)
            done += 1
            progress(done / total * _SEARCH_SHARE, f"pre-alignment: round {k + 1}, start {s + 1}/{len(rots)}")
        alive = sorted(values, key=values.get)[:plan[k + 1] if k + 1 < len(plan) else plan[-1]]
        maps = {s: maps[s] for s in sorted(alive)}
    scores = {}
    for s, m in maps.items():
        scores[s] = fit.score(pts, m, blurs[-1])
        done += 1
        progress(done / total * _SEARCH_SHARE, f"pre-alignment: scoring start {s + 1}")
    best = min(scores, key=scores.get)
    return maps[best], best


_SEARCH_SHARE = 0.75  # of the stage's progress; the refinement reports the rest


def _search_plan(starts: int, rounds: int, keep: int | None) -> list[int]:
    """How many starts run each round, then how many are scored (the last entry)."""
    if keep is None or rounds < 2:  # a first round's values rank only the starting rotations
        return [starts] * rounds + [starts]
    plan = [starts] * min(2, rounds) + [min(starts, keep)] * max(0, rounds - 2)
    return plan + [min(plan[-1], -(-keep // 3))]


def _refine(pts: _Samples, m: LinearMap, start: int, blur: float, kind: str, iterations: int, tol: float, fit: _Fit,
            report) -> LinearMap:
    """Refine the winner at the last blur, then at a half and a quarter of it.

    A large blur shrinks the barycentric targets and slows convergence, a small one needs a
    close start. Each blur gets a third of the rounds, and is left early once the fixed point's
    step moves no point more than ``tol`` or the OT value changed by less than 0.1 %: on smooth
    shapes the value is flat along some motions (a lung turning about its long axis) and the
    plain iteration crept along them for all 18 rounds (1 % of the scale per round, value
    unchanged to 1e-4). Anderson acceleration (:class:`_Anderson`) takes the steps: 5k-point
    lungs, 10 rounds instead of 18 and a lower value (affine 0.01643 vs 0.01655 at the last blur).
    """
    per_blur, it = max(1, iterations // 3), 0
    for b in (blur, blur / 2, blur / 4):
        acc, last = _Anderson(pts.x, pts.a, kind), None
        for _ in range(per_blur):
            plain, value = fit.round(pts, m, b, kind, phase="refine", start=start)
            it += 1
            report(it)
            step = np.abs(plain.apply(pts.x) - m.apply(pts.x)).max()
            stalled = last is not None and abs(value - last) <= 1e-3 * abs(value)
            last = value
            if step < tol or stalled:
                m = plain
                break
            m = acc.next(m, plain, value)
    return m


class _Anderson:
    r"""Anderson acceleration of the fixed point m -> G(m) (OT match, then the linear fit), with a
    safeguard, as in AA-ICP (Pavlov, Ovchinnikov et al., ICRA 2018) and Fast and Robust ICP
    (Zhang, Yao & Deng, TPAMI 2021).

    On smooth shapes the plain iteration converges linearly and slowly (each round moves the map
    by ~0.9x the previous step: 18 rounds of a 5k-point lung still moved it by 1 % of the scale).
    A map is represented by where it sends four anchor points (the weighted centroid and the
    ends of the principal axes at the RMS radius; 12 numbers in units of the points, which
    determine an affine map). With residuals f_k = G(m_k) - m_k, the next iterate is
    G(m_k) - sum_j gamma_j (G(m_k) - G(m_{k-1-j})) with gamma the least-squares fit of f_k by the
    residual differences (window 3), projected back to the model (rigid / similarity: the
    weighted Procrustes fit to the accelerated map's images of the points). Each round's OT
    value is a block-coordinate objective that plain steps never increase; an accelerated step
    whose value rose is undone (back to the plain step; the history restarts).
    """

    def __init__(self, x: np.ndarray, w: np.ndarray, kind: str, window: int = 3):
        c = w @ x / w.sum()
        cov = ((x - c) * w[:, None]).T @ (x - c) / w.sum()
        vals, vecs = np.linalg.eigh(cov)
        r = np.sqrt(max(float(vals.sum()), 1e-300))
        self.anchors = np.vstack([c, c + r * vecs.T])  # (4, 3), not coplanar
        self.x, self.w, self.kind, self.window = x, w, kind, window
        self.thetas, self.images = [], []  # m_k and G(m_k), as anchor images
        self.prev_value, self.prev_plain = None, None

    def _theta(self, m: LinearMap) -> np.ndarray:
        return m.apply(self.anchors).ravel()

    def next(self, m: LinearMap, plain: LinearMap, value: float) -> LinearMap:
        """The map after m, given G(m) = ``plain`` and the OT value at m."""
        if self.prev_value is not None and value > self.prev_value * (1 + 1e-6) + 1e-12 and self.prev_plain is not None:
            # the accelerated m made the objective worse: take the plain step from before it
            self.thetas, self.images, self.prev_value = [], [], None
            out, self.prev_plain = self.prev_plain, None
            return out
        self.prev_value, self.prev_plain = value, plain
        self.thetas.append(self._theta(m))
        self.images.append(self._theta(plain))
        self.thetas, self.images = self.thetas[-self.window - 1:], self.images[-self.window - 1:]
        if len(self.thetas) < 2:
            return plain
        f = np.array(self.images) - np.array(self.thetas)  # (k, 12) residuals
        df, dg = np.diff(f, axis=0), np.diff(np.array(self.images), axis=0)
        gamma = np.linalg.lstsq(df.T, f[-1], rcond=None)[0]
        theta = self.images[-1] - gamma @ dg
        affine = fit_linear(self.anchors, theta.reshape(4, 3), kind="affine")
        if self.kind == "affine":
            return affine
        return fit_linear(self.x, affine.apply(self.x), self.w, self.kind)
