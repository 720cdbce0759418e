r"""The soft-min, differentiable in the points it is evaluated at.

softmin(eps, x, y, h)_i = -eps log sum_j exp(h_j - |x_i - y_j|^2 / (2 eps))          (N,)

Its gradient with respect to x_i is x_i - sum_j w_ij y_j, with w the soft-max weights: the
displacement from x_i to its barycentric projection. The backward pass needs only that (N, D)
mean, which the forward pass computes in the same reduction, so differentiating never stores
an N x M matrix, whatever the backend (Feydy, thesis 2020, sec. 3.3; Charlier et al., JMLR 2021).
y and h are treated as constants: the Sinkhorn solver detaches them by design (envelope theorem).
"""
from __future__ import annotations

import torch

from .backends.base import Kernel


class _SoftMin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: Kernel, eps: float, h: torch.Tensor) -> torch.Tensor:
        lse, ybar = kernel.lse_mean(eps, h, kernel.y)  # (N,), (N, D)
        ctx.save_for_backward(kernel.x, ybar)
        return -eps * lse

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, ybar = ctx.saved_tensors
        return grad_out[:, None] * (x - ybar), None, None, None  # (N, D)


def softmin_on(kernel: Kernel, eps: float, h: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
    """softmin over ``kernel``'s pair; differentiable in ``x`` (the kernel's rows) when given."""
    if x is not None and x.requires_grad and torch.is_grad_enabled():
        return _SoftMin.apply(x, kernel, eps, h.detach())
    return -eps * kernel.lse(eps, h)


def softmin(eps: float, x: torch.Tensor, y: torch.Tensor, h: torch.Tensor, *, backend: str = "torch") -> torch.Tensor:
    r"""The engine's primitive: f_i = -eps log sum_j exp(h_j - |x_i - y_j|^2 / (2 eps)).

    Parameters
    ----------
    eps : float
        Temperature, squared units of the points (eps = blur^2).
    x : (N, D) tensor
        Points where the result lives; the result is differentiable with respect to x.
    y : (M, D) tensor
        Points reduced over (treated as constant).
    h : (M,) tensor
        Weighted potential on y, e.g. log b_j + g_j / eps (treated as constant).
    backend : {"torch", "keops"}

    Returns
    -------
    (N,) tensor, squared units of the points.
    """
    from . import backends

    be = backends.get(backend, x.device)
    ks = be.kernels(x.detach(), y.detach(), self_terms=False)
    return softmin_on(ks.xy, eps, h.to(x.dtype), x)
