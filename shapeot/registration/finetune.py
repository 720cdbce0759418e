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

from typing import TYPE_CHECKING

import numpy as np

from shapeot.core.pooling import clusters
from shapeot.core.progress import Progress
from shapeot.deform import LDDMM, KernelSpline
from shapeot.deform.kernels import gaussian, gaussian_sum
from shapeot.deform.lddmm import hamiltonian, shoot

from .config import EngineOptions, FinetuneConfig, RegistrationConfig
from .history import HistoryEntry
from .nonrigid import effective_reach
from .otstep import to_tensor

if TYPE_CHECKING:
    from .stages import WorkingState

__all__ = ["FinetuneStage", "finetune_map"]


class FinetuneStage:
    """The fine-tuning stage: one more map (``KernelSpline`` or ``LDDMM``) taking the moving source
    closer to the target, by L-BFGS on S_eps + gamma E (module docstring).

    Blur and width keep the levels' floors (``min_blur_spacings``, ``min_width_spacings`` times
    the sampling spacing): finer would fit one sampling to the other. Appends the map to
    ``state.maps``; ``state.last`` no longer describes the final positions and is dropped.
    """

    name = "finetune"
    share = 0.05

    def __init__(self, config: RegistrationConfig):
        self.config = config

    def run(self, state: WorkingState, progress: Progress) -> WorkingState:
        c, f, u = self.config, self.config.finetune, state.unit
        spacing = state.spacing()
        reach = effective_reach(c, state.cloud)
        ft = finetune_map(state.x, state.a, state.y, state.b, model=c.model, config=f, engine=c.engine,
                          blur=max(f.blur * u, c.min_blur_spacings * spacing),
                          width=max(f.width * u, c.min_width_spacings * spacing),
                          reach=None if reach is None else reach * u, n_steps=c.lddmm.steps, progress=progress,
                          history=state.history)
        state.x = ft.apply(state.x)
        state.maps.append(ft)
        state.last = None
        return state


def finetune_map(points: np.ndarray, weights: np.ndarray, y: np.ndarray, b: np.ndarray, *, model: str,
                 config: FinetuneConfig, engine: EngineOptions, blur: float, width: float, reach: float | None,
                 n_steps: int, progress: Progress, history: list):
    """One more map (``KernelSpline`` or ``LDDMM``) taking the moving source closer to the target.

    Parameters
    ----------
    points, weights : (N, 3), (N,) the moving source (normalised units) and its weights
    y, b : (M, 3), (M,) the target
    model : {"spline", "lddmm"}
    config : FinetuneConfig
        Points per shape in the loss (grid clusters), control points, L-BFGS iterations, the
        energy weight gamma.
    blur, width, reach : floats in the points' units
    history : list
        One :class:`HistoryEntry` per evaluation of the objective (stage "finetune").
    """
    import torch

    from shapeot.ot import solve

    dt, device = torch.float32, engine.device
    src, tgt = clusters(points, weights, config.points), clusters(y, b, config.points)
    xs = to_tensor(src.centroids(points), device, dt)
    a = to_tensor(src.cluster_weights, device, dt)
    yt, bt = to_tensor(tgt.centroids(y), device, dt), to_tensor(tgt.cluster_weights, device, dt)
    ctrl = clusters(src.centroids(points), src.cluster_weights, config.control_points)
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

    iterations = config.iterations
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=iterations, max_eval=int(1.5 * iterations) + 1,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)
    evals = [0]

    def closure():
        opt.zero_grad()
        # an L-BFGS evaluation of the value, not a final plan: the schedule alone (tol=None)
        res = solve(deform(xs), yt, a, bt, blur=blur, reach=reach, scaling=engine.scaling, backend=engine.backend,
                    tol=None)
        loss = res.value + config.gamma * energy()
        loss.backward()
        history.append(HistoryEntry("finetune", evals[0], float(loss.detach()), blur=blur))
        evals[0] += 1
        progress(min(1.0, evals[0] / (1.5 * iterations + 1)), f"fine-tuning: evaluation {evals[0]}")
        return loss

    opt.step(closure)
    th = theta.detach().cpu().double().numpy()
    if model == "spline":
        return KernelSpline(q_np, th, float(width))
    return LDDMM(q_np, th, float(width), int(n_steps))
