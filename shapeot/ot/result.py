r"""Results of :func:`shapeot.ot.solve`: the value, the potentials and a lazy transport plan.

The entropic plan is never stored. With dual potentials f (N,), g (M,), weights a, b and
eps = blur^2 it is

.. math::  P_{ij} = a_i\, b_j \exp\big((f_i + g_j - C(x_i, y_j)) / \varepsilon\big),
           \qquad C(x, y) = |x - y|^2 / 2,

and every query is a reduction over j of the backend's log-sum-exp (Peyré & Cuturi 2019, 4.4).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .backends.base import Kernel

_TOPK_BLOCK = 1 << 22


class TransportPlan:
    """The (N, M) entropic transport plan P, as an operator: nothing of size N*M is kept."""

    def __init__(self, kernel: Kernel, f: torch.Tensor, g: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                 eps: float, offset: torch.Tensor, transposed: "TransportPlan | None" = None):
        self._kernel = kernel
        self._f, self._g, self._a, self._b, self._eps = f, g, a, b, eps
        self._offset = offset  # the coordinates were centred by this (D,) vector
        self._T = transposed

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self._f), len(self._g))

    def _h(self) -> torch.Tensor:
        return self._b.log() + self._g / self._eps  # (M,)

    def _row_scale(self, lse: torch.Tensor) -> torch.Tensor:
        return (self._a.log() + self._f / self._eps + lse).exp()  # (N,) row sums of P

    def row_sums(self) -> torch.Tensor:
        """(N,) P 1: the first marginal of the plan (equals a at convergence, balanced case)."""
        return self._row_scale(self._kernel.lse(self._eps, self._h()))

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """P @ v for v of shape (M,) or (M, E); returns (N,) or (N, E)."""
        v = torch.as_tensor(v, dtype=self._f.dtype, device=self._f.device)
        if v.shape[0] != self.shape[1] or v.dim() not in (1, 2):
            raise ValueError(f"v has shape {tuple(v.shape)}; expected ({self.shape[1]},) or ({self.shape[1]}, E)")
        vv = v[:, None] if v.dim() == 1 else v
        lse, mean = self._kernel.lse_mean(self._eps, self._h(), vv)
        out = self._row_scale(lse)[:, None] * mean  # (N, E)
        return out[:, 0] if v.dim() == 1 else out

    def barycentric_map(self) -> torch.Tensor:
        """(N, D) T(x_i) = sum_j P_ij y_j / sum_j P_ij, in the input coordinates."""
        _, mean = self._kernel.lse_mean(self._eps, self._h(), self._kernel.y)
        return mean + self._offset

    def top_k(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Strongest partners of each x_i: (indices (N, k) long, masses P_ij (N, k)), by decreasing mass."""
        m = self.shape[1]
        if not 1 <= k <= m:
            raise ValueError(f"k must be in [1, {m}] (the number of target points); got {k}")
        x, y, eps, h = self._kernel.x, self._kernel.y, self._eps, self._h()
        hy = h - (y * y).sum(1) / (2 * eps)  # (M,)
        rows = max(1, _TOPK_BLOCK // m)
        idx, val = [], []
        for i0 in range(0, len(x), rows):
            xi = x[i0:i0 + rows]
            s = torch.addmm(hy[None, :], xi, y.T, alpha=1.0 / eps) - (xi * xi).sum(1)[:, None] / (2 * eps)
            v, j = s.topk(k, dim=1)  # (B, k): log P_ij up to the row constant
            idx.append(j)
            val.append(v)
        logp = torch.cat(val) + (self._a.log() + self._f / eps)[:, None]
        return torch.cat(idx), logp.exp()

    @property
    def T(self) -> "TransportPlan":
        """The transposed plan (M, N), as an operator on the x side."""
        if self._T is None:
            raise ValueError("this plan has no transpose attached")
        return self._T

    def dense(self, max_elements: int = 25_000_000) -> torch.Tensor:
        """The plan as an (N, M) tensor; refuses more than ``max_elements`` entries."""
        n, m = self.shape
        if n * m > max_elements:
            raise ValueError(f"a dense {n} x {m} plan is too large; use matvec, top_k or barycentric_map")
        x, y = self._kernel.x, self._kernel.y
        c = torch.cdist(x, y) ** 2 / 2  # (N, M)
        return (self._a.log()[:, None] + self._b.log()[None, :]
                + (self._f[:, None] + self._g[None, :] - c) / self._eps).exp()


@dataclass
class OTResult:
    """What :func:`shapeot.ot.solve` returns.

    Attributes
    ----------
    value : 0-dim tensor
        The (debiased) Sinkhorn divergence, in squared units of the points (mm^2 for mm);
        differentiable with respect to x, y, a and b.
    f, g : (N,), (M,) tensors
        Dual potentials of OT_eps(a, b) (detached), squared units.
    plan : TransportPlan
        The entropic plan as a lazy operator (``matvec``, ``top_k``, ``barycentric_map``).
    blur, reach, eps : float
        The blur and reach used (units of the points) and eps = blur^2.
    backend, mode : str
        "torch" or "keops"; "dense" or "online".
    n_iterations : int
        Sinkhorn iterations (symmetric updates), the final extrapolation included.
    timings : dict
        Seconds spent in "setup", "sinkhorn", "extrapolation".
    info : dict
        Multiscale details: cells, cell size, kept fraction of the pairs, truncation used,
        times the mask was widened, bound on the plan mass in the dropped pairs.
    """

    value: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    plan: TransportPlan
    blur: float
    reach: float | None
    eps: float
    backend: str
    mode: str
    n_iterations: int
    timings: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    _marginal_error: float | None = field(default=None, repr=False)

    @property
    def marginal_error(self) -> float:
        r"""L1 error of the plan's marginals, sum_i |P1 - a'|_i + sum_j |P^T 1 - b'|_j.

        a' = a and b' = b for balanced OT. For unbalanced OT the optimal plan's marginals are
        a' = a exp(-f/rho), b' = b exp(-g/rho) (first-order conditions), so this measures
        convergence in both cases. Computed on first access (two reductions), then cached.
        """
        if self._marginal_error is None:
            p, pt = self.plan, self.plan.T
            ta, tb = p._a, pt._a
            if self.reach is not None:
                rho = self.reach**2
                ta, tb = ta * (-p._f / rho).exp(), tb * (-pt._f / rho).exp()
            err = (p.row_sums() - ta).abs().sum() + (pt.row_sums() - tb).abs().sum()
            self._marginal_error = float(err)
        return self._marginal_error
