"""One OT correspondence step: the engine's plan turned into target points and confidences."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

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
        return float(self.result.marginal_error)


def to_tensor(array: np.ndarray, device: str, dtype=None):
    """A torch tensor on ``device`` (float32 by default: the OT engine's fast path)."""
    import torch

    return torch.as_tensor(np.asarray(array), dtype=dtype or torch.float32, device=device)


def ot_match(x: np.ndarray, a: np.ndarray, y: np.ndarray, b: np.ndarray, *, blur: float, reach: float | None,
             scaling: float, backend: str, device: str, debias: bool = False, mode: str = "auto",
             progress=None) -> OTMatch:
    """Entropic OT from (x, a) to (y, b) and the barycentric projection of each x_i.

    Parameters
    ----------
    x, y : (N, 3), (M, 3) float arrays; a, b : (N,), (M,) weights summing to 1
    blur, reach : float (units of x), reach None for balanced OT
    debias : bool
        False (correspondences only): skips the self-transport terms, half the cost.
    mode : str
        :func:`shapeot.ot.solve`'s mode ("auto", "dense", "online", "multiscale").
    progress : callable(fraction, message), optional
        Passed to :func:`shapeot.ot.solve`: checked at every Sinkhorn iteration, for Cancel.

    Returns
    -------
    OTMatch
        ``targets`` T(x_i) = sum_j P_ij y_j / sum_j P_ij, ``masses`` sum_j P_ij (a_i for
        balanced OT at convergence; smaller where unbalanced OT gave up on x_i), the OT value.
    """
    from shapeot.ot import solve
    from shapeot.ot.diagnostics import quiet_convergence

    # The pipeline's plans are steps of a fixed point, not final answers: their marginal error
    # goes into Registration.history (one warning per round would drown the user).
    with quiet_convergence():
        res = solve(to_tensor(x, device), to_tensor(y, device), to_tensor(a, device), to_tensor(b, device),
                    blur=blur, reach=reach, scaling=scaling, debias=debias, backend=backend, mode=mode,
                    progress=progress)
    targets = res.plan.barycentric_map().detach().cpu().double().numpy()
    masses = res.plan.row_sums().detach().cpu().double().numpy()
    return OTMatch(targets, masses, float(res.value), res)
