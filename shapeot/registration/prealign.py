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
from .progress import Progress

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
        Most refinement rounds of the winner; stops when no point moves more than ``tol``.
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
    # Each blur gets a third of the rounds, and is left early once no point moves more than tol.
    per_blur, it = max(1, iterations // 3), 0
    for blur in (blurs[-1], blurs[-1] / 2, blurs[-1] / 4):
        for _ in range(per_blur):
            new, loss = round_(m, blur, kind, fine or (x, a, y, b))
            history.append({"stage": "prealign", "start": s, "blur": blur, "loss": loss})
            moved = np.abs(new.apply(fine[0] if fine else x) - m.apply(fine[0] if fine else x)).max()
            m, it = new, it + 1
            progress((done + it) / n_work, f"pre-alignment: refining start {s + 1}")
            if moved < tol:
                break
    return m
