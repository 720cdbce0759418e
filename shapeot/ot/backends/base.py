r"""The one primitive every backend implements: the log-sum-exp reduction behind the soft-min.

For a pair of clouds x (N, D), y (M, D), a temperature eps > 0 and a weighted dual potential
h (M,) (in practice h_j = log b_j + g_j / eps), with C(x, y) = |x - y|^2 / 2:

.. math::  \mathrm{lse}_i = \log \sum_j \exp\big(h_j - C(x_i, y_j)/\varepsilon\big),
           \qquad \mathrm{softmin}(\varepsilon, x, y, h)_i = -\varepsilon\, \mathrm{lse}_i .

``lse_mean`` also returns the soft-max-weighted means sum_j w_ij v_j of a signal v (M, E),
w_ij = exp(h_j - C_ij/eps - lse_i): with v = y this is the barycentric projection of x_i and the
gradient of the soft-min, d softmin_i / d x_i = x_i - sum_j w_ij y_j (Feydy, thesis 2020, 3.3).
Everything else (Sinkhorn loop, plans, gradients) is written once on top of these two methods.
"""
from __future__ import annotations

from typing import Protocol

import torch


class Kernel(Protocol):
    """A pair of point clouds on which a backend reduces; built by ``Backend.kernels``."""

    x: torch.Tensor  # (N, D), detached
    y: torch.Tensor  # (M, D), detached

    def lse(self, eps: float, h: torch.Tensor) -> torch.Tensor:
        """(N,) log sum_j exp(h_j - |x_i - y_j|^2 / (2 eps)) for h (M,)."""

    def lse_mean(self, eps: float, h: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """((N,), (N, E)): the lse above and the soft-max-weighted means of v (M, E)."""


class KernelSet:
    """The four kernels of a debiased solve: x->y, y->x and the self-terms x->x, y->y."""

    def __init__(self, xy: Kernel, yx: Kernel, xx: Kernel | None, yy: Kernel | None, mode: str):
        self.xy, self.yx, self.xx, self.yy, self.mode = xy, yx, xx, yy, mode
