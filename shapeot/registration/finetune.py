r"""Fine-tuning: minimise the Sinkhorn divergence + deformation energy by gradient descent.

.. math::  \min_\theta\ S_\varepsilon\big(\textstyle\sum_i a_i \delta_{\phi_\theta(x_i)},\ \sum_j b_j \delta_{y_j}\big)
           + \gamma\, E(\theta)

with phi_theta either a Gaussian RKHS displacement x + sum_k K(x, q_k) alpha_k (E = |v|_V^2) or
an LDDMM geodesic shot from momenta at the control points q_k (E = H(q, p)). The gradient of
S_eps comes from the OT engine by the envelope theorem (no backpropagation through Sinkhorn
iterations; Feydy et al., AISTATS 2019), and L-BFGS takes the steps. This is the last step of
Shen, Feydy et al., "Accurate point cloud registration with robust optimal transport" (NeurIPS 2021).
"""
from __future__ import annotations

import numpy as np

from shapeot.deform import LDDMM, KernelSpline
from shapeot.deform.kernels import gaussian, gaussian_sum
from shapeot.deform.lddmm import hamiltonian, shoot

from .otstep import to_tensor
from shapeot.core.progress import Progress
from shapeot.core.pooling import clusters

__all__ = ["finetune_map"]


def finetune_map(points: np.ndarray, weights: np.ndarray, y: np.ndarray, b: np.ndarray, *, model: str,
                 n_points: int, n_control: int, blur: float, width: float, gamma: float, reach: float | None,
                 scaling: float, n_steps: int, iterations: int, backend: str, device: str, progress: Progress,
                 history: list):
    """One more map (``KernelSpline`` or ``LDDMM``) taking the moving source closer to the target.

    Parameters
    ----------
    points, weights : (N, 3), (N,) the moving source (normalised units) and its weights
    y, b : (M, 3), (M,) the target
    model : {"spline", "lddmm"}
    n_points, n_control : ints
        Points per shape (grid clusters) in the loss; control points of the map.
    blur, width, reach : floats in the points' units; gamma the energy weight
    iterations : int
        L-BFGS iterations.
    history : list
        One dict per evaluation of the objective (stage "finetune", loss).
    """
    import torch

    from shapeot.ot import solve
    from shapeot.ot.diagnostics import quiet_convergence

    dt = torch.float32
    src, tgt = clusters(points, weights, n_points), clusters(y, b, n_points)
    xs = to_tensor(src.centroids(points), device, dt)
    a = to_tensor(src.cluster_weights, device, dt)
    yt, bt = to_tensor(tgt.centroids(y), device, dt), to_tensor(tgt.cluster_weights, device, dt)
    ctrl = clusters(src.centroids(points), src.cluster_weights, n_control)
    q_np = ctrl.centroids(src.centroids(points))
    q = to_tensor(q_np, device, dt)
    theta = torch.zeros_like(q, requires_grad=True)
    kqq = gaussian(q, q, width)

    def deform(x):
        if model == "spline":
            return x + gaussian_sum(x, q, theta, width)
        return shoot(q, theta, width, n_steps, x)[2]

    def energy():
        if model == "spline":
            return (theta * (kqq @ theta)).sum()
        return hamiltonian(q, theta, width)

    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=iterations, max_eval=int(1.5 * iterations) + 1,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)
    evals = [0]

    def closure():
        opt.zero_grad()
        with quiet_convergence():  # an L-BFGS evaluation, not a final plan
            res = solve(deform(xs), yt, a, bt, blur=blur, reach=reach, scaling=scaling, backend=backend)
        loss = res.value + gamma * energy()
        loss.backward()
        evals[0] += 1
        history.append({"stage": "finetune", "iteration": evals[0], "blur": blur, "loss": float(loss.detach())})
        progress(min(1.0, evals[0] / (1.5 * iterations + 1)), f"fine-tuning: evaluation {evals[0]}")
        return loss

    opt.step(closure)
    th = theta.detach().cpu().double().numpy()
    if model == "spline":
        return KernelSpline(q_np, th, float(width))
    return LDDMM(q_np, th, float(width), int(n_steps))
