"""One OT correspondence step: the engine's plan turned into target points and confidences."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .config import EngineOptions

__all__ = ["OTMatch", "ot_match", "to_tensor"]


class OTMatch(NamedTuple):
    """Barycentric targets T(x_i) (N, 3), row masses m_i (N,), the value, the engine's result."""

    targets: np.ndarray
    masses: np.ndarray
    value: float
    result: object

    @property
    def marginal_error(self) -> float:
        """Relative L1 error of the plan's marginals (recorded in the registration history)."""
        return float(self.result.info["relative_marginal_error"])


def to_tensor(array: np.ndarray, device: str, dtype=None):
    """A torch tensor on ``device`` (float32 by default: the OT engine's fast path)."""
    import torch

    return torch.as_tensor(np.asarray(array), dtype=dtype or torch.float32, device=device)


def ot_match(x: np.ndarray, a: np.ndarray, y: np.ndarray, b: np.ndarray, *, blur: float, reach: float | None,
             engine: EngineOptions, debias: bool = False, progress=None) -> OTMatch:
    """Entropic OT from (x, a) to (y, b) and the barycentric projection of each x_i.

    The plans of a registration are steps of a fixed point, not final answers: the solve stops
    at the end of its epsilon-scaling (``tol=None``), as the pipeline's accuracy figures were
    measured, and the plan's marginal error goes into ``Registration.history``.

    Parameters
    ----------
    x, y : (N, D), (M, D) float arrays; a, b : (N,), (M,) weights summing to 1
    blur, reach : float (units of x), reach None for balanced OT
    engine : EngineOptions
        Scaling, backend and device; the engine chooses the mode (dense, multiscale, ...).
    debias : bool
        False (correspondences only): skips the self-transport terms, half the cost.
    progress : callable(fraction, message), optional
        Passed to :func:`shapeot.ot.solve`: checked at every Sinkhorn iteration, for Cancel.

    Returns
    -------
    OTMatch
        ``targets`` T(x_i) = sum_j P_ij y_j / sum_j P_ij, ``masses`` sum_j P_ij (a_i for
        balanced OT at convergence; smaller where unbalanced OT gave up on x_i), the OT value.
    """
    from shapeot.ot import solve

    d = engine.device
    res = solve(to_tensor(x, d), to_tensor(y, d), to_tensor(a, d), to_tensor(b, d), blur=blur, reach=reach,
                scaling=engine.scaling, debias=debias, backend=engine.backend, tol=None, progress=progress)
    targets = res.plan.barycentric_map().detach().cpu().double().numpy()
    masses = res.plan.row_sums().detach().cpu().double().numpy()
    return OTMatch(targets, masses, float(res.value), res)
