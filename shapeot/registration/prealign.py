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

import numpy as np

from shapeot.deform import LinearMap, fit_linear

from .otstep import ot_match
from shapeot.core.progress import Progress

__all__ = ["cube_rotations", "prealign_points"]


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


def prealign_points(x: np.ndarray, a: np.ndarray, y: np.ndarray, b: np.ndarray, *, kind: str, starts: int,
                    blurs: tuple[float, ...], iterations: int, reach: float | None, scaling: float, backend: str,
                    device: str, progress: Progress, history: list, tol: float = 1e-4,
                    fine: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None) -> LinearMap:
    """The linear map of ``kind`` taking the weighted points (x, a) onto (y, b).

    Parameters
    ----------
    x, y : (N, 3), (M, 3) float arrays; a, b : weights summing to 1
    kind : {"rigid", "similarity", "affine"}
        Affine runs the start search with rigid maps, then affine rounds from the winner.
    starts : int
        Number of the cube's rotations tried (1: identity only).
    blurs : tuple of float
        Annealed blurs of each start's rounds (units of x); the last is used to score and refine.
    iterations : int
        Most refinement rounds of the winner, a third per blur; a blur is left when a step moves
        no point more than ``tol`` or the OT value changes by less than 0.1 %.
    reach : float or None
        Unbalanced OT reach (units of x).
    progress : Progress
    history : list
        Receives one dict per round: stage, start, blur, loss (OT value, squared units).
    fine : (x, a, y, b), optional
        Denser samplings of the same shapes for the refinement of the winner (the start search
        runs on the coarse ones): the accuracy of a fit is limited by the sampling it sees.

    Returns
    -------
    LinearMap
    """
    cx, cy = a @ x / a.sum(), b @ y / b.sum()
    search_kind = "rigid" if kind == "affine" else kind  # 12 free parameters overfit a poor start
    rots = cube_rotations()[:starts]
    n_work = len(rots) * (len(blurs) + 1) + 3 * max(1, iterations // 3)
    done = 0

    def round_(m: LinearMap, blur: float, fit_kind: str, pts=(x, a, y, b)) -> tuple[LinearMap, float]:
        px, pa, py, pb = pts
        match = ot_match(m.apply(px), pa, py, pb, blur=blur, reach=reach, scaling=scaling, backend=backend,
                         device=device)
        return fit_linear(px, match.targets, match.masses, fit_kind), match.value

    best = None
    for s, rot in enumerate(rots):
        m = _about(rot, cx, cy)
        for blur in blurs:
            m, loss = round_(m, blur, search_kind)
            history.append({"stage": "prealign", "start": s, "blur": blur, "loss": loss})
            done += 1
            progress(done / n_work, f"pre-alignment: start {s + 1}/{len(rots)}")
        score = ot_match(m.apply(x), a, y, b, blur=blurs[-1], reach=reach, scaling=scaling, backend=backend,
                         device=device, debias=True).value
        done += 1
        if best is None or score < best[0]:
            best = (score, m, s)
    _, m, s = best
    # Refine the winner at the last blur, then at a half and a quarter of it: a large blur
    # shrinks the barycentric targets and slows convergence, a small one needs a close start.
    # Each blur gets a third of the rounds, and is left early once the fixed point's step moves
    # no point more than tol or the OT value changed by less than 0.1 %: on smooth shapes the
    # value is flat along some motions (a lung turning about its long axis) and the plain
    # iteration crept along them for all 18 rounds (1 % of the scale per round, value
    # unchanged to 1e-4). Anderson acceleration (below) takes the steps: 5k-point lungs, 10
    # rounds instead of 18 and a lower value (affine 0.01643 vs 0.01655 at the last blur).
    px, pa, py, pb = fine or (x, a, y, b)
    per_blur, it = max(1, iterations // 3), 0
    for blur in (blurs[-1], blurs[-1] / 2, blurs[-1] / 4):
        acc, last = _Anderson(px, pa, kind), None
        for _ in range(per_blur):
            plain, value = round_(m, blur, kind, (px, pa, py, pb))
            history.append({"stage": "prealign", "start": s, "blur": blur, "loss": value})
            it += 1
            progress((done + it) / n_work, f"pre-alignment: refining start {s + 1}")
            step = np.abs(plain.apply(px) - m.apply(px)).max()
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
