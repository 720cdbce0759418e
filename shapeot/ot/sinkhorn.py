r"""Debiased, unbalanced Sinkhorn divergences in the log domain, with epsilon-scaling.

For measures a = sum_i a_i delta_{x_i}, b = sum_j b_j delta_{y_j}, cost C(x, y) = |x - y|^2 / 2,
eps = blur^2 and rho = reach^2 (rho = +inf for balanced OT):

.. math::
    \mathrm{OT}_\varepsilon(a, b) = \min_{P \geq 0} \langle P, C\rangle
        + \varepsilon\, \mathrm{KL}(P \,|\, a \otimes b)
        + \rho\, \mathrm{KL}(P 1 \,|\, a) + \rho\, \mathrm{KL}(P^\top 1 \,|\, b),

    S_\varepsilon(a, b) = \mathrm{OT}_\varepsilon(a, b) - \tfrac12 \mathrm{OT}_\varepsilon(a, a)
        - \tfrac12 \mathrm{OT}_\varepsilon(b, b).

S_eps is positive, definite and convex in each argument, and tends to OT_0 as eps -> 0 and to an
MMD as eps -> infinity (Feydy, Séjourné, Vialard, Amari, Trouvé, Peyré, "Interpolating between
optimal transport and MMD using Sinkhorn divergences", AISTATS 2019). The dual potentials solve
f = lam * softmin(eps, x, y, log b + g/eps), g = lam * softmin(eps, y, x, log a + f/eps) with the
damping lam = rho / (rho + eps) (Séjourné et al., "Sinkhorn divergences for unbalanced optimal
transport", arXiv:1910.12958, Prop. 12). Symmetric (averaged) updates and epsilon-scaling from the
diameter down to the blur follow Feydy's thesis (2020, sec. 3.3); Peyré & Cuturi, "Computational
Optimal Transport" (2019), ch. 4, is the reference text.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import torch

from shapeot.core.progress import Progress, as_progress

from . import backends as _backends
from . import diagnostics
from .checks import (
    as_points,
    as_weights,
    check_choice,
    check_int,
    check_masses,
    check_nonnegative,
    check_positive,
    check_scaling,
)
from .device import choose_kernels, resolve_device
from .multiscale import kernel_stats, multiscale_loop
from .reductions import softmin_on
from .result import OTResult, TransportPlan
from .schedule import blur_schedule, diameter, schedule_length

__all__ = ["solve", "SolverPlan", "choose_mode", "DEFAULT_TOL", "MULTISCALE_FROM_PAIRS"]

#: Multiscale from this many pairs (about 5k x 5k points) when ``mode="auto"``.
MULTISCALE_FROM_PAIRS = 25_000_000
#: ``tol`` of a call that gives none: the plan is returned within 5 % (relative L1) of its
#: marginals, the level at which a plan used to be warned about (``MARGINAL_WARN``).
DEFAULT_TOL = diagnostics.MARGINAL_WARN


def solve(x, y, a=None, b=None, *, blur: float | None = None, reach: float | None = None,
          scaling: float = 0.5, debias: bool = True, backend: str = "auto", mode: str = "auto",
          updates: str = "symmetric", tol: float | None = DEFAULT_TOL, max_iter: int = 1000,
          truncate: float = 5.0, progress=None, device=None) -> OTResult:
    r"""Debiased Sinkhorn divergence S_eps(a, b) between two weighted point clouds, C(x,y) = |x-y|^2/2.

    Parameters
    ----------
    x : (N, D) tensor
        Source points, in physical units (mm for shapes). float64 stays float64; anything else
        is computed in float32 (float32 with a blur above twice the diameter is solved in
        float64 internally, where float32 would round the value away, and returned in float32).
    y : (M, D) tensor
        Target points, same units and D.
    a, b : (N,), (M,) tensors, optional
        Non-negative weights; uniform (1/N, 1/M) when None. Balanced OT (``reach=None``)
        needs each to sum to 1.
    blur : float, optional
        sigma, with eps = blur^2: the length scale below which the transport is blurred, in the
        units of x and y. Default: 1 % of the diameter of the joint bounding box.
    reach : float, optional
        rho = reach^2 weighs the marginal penalty of unbalanced OT: mass farther away than about
        ``reach`` is created or destroyed rather than transported. None: balanced OT.
    scaling : float in (0, 1)
        Ratio between successive blurs of the epsilon-scaling from the diameter down to ``blur``:
        the trade-off between speed (0.5) and accuracy (0.9 and above).
    debias : bool
        True: S_eps (a divergence: S_eps(a, a) = 0). False: OT_eps(a, b).
    backend : {"auto", "torch", "keops", "triton"}
        "auto" (:func:`shapeot.ot.device.choose_kernels`): on CUDA, the fused Triton kernels
        when Triton imports and passes its self-check; otherwise dense torch while the cost
        matrices fit in memory, else KeOps if its self-test passed on this machine, else online
        torch. "triton": fused GPU kernels (all pairs, or block-sparse in multiscale mode).
    mode : {"auto", "dense", "online", "multiscale"}
        For the torch backend: keep the cost matrices (dense), recompute them block by block
        (online), or solve coarse-to-fine with kernel truncation (multiscale,
        :mod:`shapeot.ot.multiscale`). "auto" (:func:`choose_mode`): dense up to ~5k x 5k points
        while it fits in memory, else multiscale, in any dimension (with ``backend="keops"``:
        KeOps's own all-pairs reductions). Multiscale's fine reductions run in a fused numba kernel on
        the CPU, batched torch tiles elsewhere, or KeOps's block-sparse ranges with
        ``backend="keops"``.
    updates : {"symmetric", "alternating"}
        "symmetric": f and g are both updated from the previous pair and averaged with it
        (Feydy 2020): S(a, b) = S(b, a) exactly at every iteration, and identical to GeomLoss.
        "alternating": g is updated from the new f (Gauss-Seidel). On overlapping clouds it
        converges faster per iteration (closer to exact OT at scaling 0.8), but under
        epsilon-scaling it can stall far from the optimum when the measures are far apart
        relative to the blur: a brain and its 3.7 mm translate at blur 1 mm gave S = -0.5 mm^2
        instead of the exact 7.0 at scaling 0.5, and 1000 extra iterations did not recover it,
        while "symmetric" is right to 1e-5 (tests/engine/test_translation.py). The plan's
        marginal error does not flag it (0.16 on blobs where the value is within 1 % of exact
        OT). Use it only for values of overlapping clouds; prefer "symmetric" (the default).
        The self-terms of the debiasing are always updated symmetrically.
    tol : float >= 0 or None, default 0.05
        After the schedule, keep iterating at the final blur until the plan's relative L1
        marginal error, |P1 - a'|_1 + |P^T 1 - b'|_1 over the mass |a'| + |b'|, is below
        ``tol`` (or ``max_iter`` iterations in all): the returned plan is within ``tol`` of its
        marginals, and a :class:`~shapeot.ot.diagnostics.ConvergenceWarning` says so when
        ``max_iter`` ran out first. None: stop at the end of the schedule, as GeomLoss does (for
        values and for the steps of a fixed point, which do not need a converged plan); the
        value is then accurate (debiasing, envelope theorem) but the plan's marginals can be off
        by several percent at scaling 0.5 (``res.info["relative_marginal_error"]``), and no
        warning is given.
    max_iter : int >= 1
        Most Sinkhorn iterations in all: the epsilon-scaling (one per blur of the schedule, on
        every scale of a multiscale solve) and the ``tol`` iterations together. A schedule
        longer than ``max_iter`` (a scaling very close to 1) is refused with a ValueError.
    truncate : float
        Multiscale only: a cluster pair is skipped when a bound of its share of a reduction is
        below exp(-truncate) times a bound of the total; the mask is widened automatically when
        the bound on the skipped mass of a row exceeds 1e-5 of the row, by log(bound / 1e-5)
        at a time, until it does not (``res.info["widened"]``, ``["dropped_mass_bound"]``).

    progress : callable(fraction, message) -> bool, optional
        Called after every Sinkhorn iteration (a fraction of the schedule); returning False
        stops the solve by raising :class:`shapeot.core.errors.Cancelled`, so a GUI's Cancel acts
        within one iteration (milliseconds to about a second at 10^5 points on a CPU).
    device : str or torch.device, optional
        "auto", "cpu", "cuda", "cuda:N": move the inputs there first
        (:func:`shapeot.ot.device.resolve_device`). None: where x and y already are.

    Returns
    -------
    OTResult
        ``value`` (0-dim tensor, squared units, differentiable in x, y, a, b by the envelope
        theorem: one extrapolation step after convergence, no backpropagation through the loop),
        potentials ``f``, ``g``, the lazy ``plan``, ``marginal_error``, ``backend``,
        ``n_iterations``.

    Raises
    ------
    ValueError
        NaN/inf or empty clouds, mismatched dimensions, negative or non-finite weights, unequal
        masses in balanced mode, blur or reach <= 0 or non-finite, scaling outside (0, 1),
        max_iter < 1 or a schedule longer than max_iter, tol negative or NaN, truncate < 0,
        unknown backend, mode, updates or device names; the message names the argument.
    FloatingPointError
        If the value, the potentials or the plan's marginals are not finite (never returned
        silently): e.g. a blur so small relative to the diameter that the plan's row sums
        overflow (float32 below about 1e-4 of the diameter at scaling 0.5).

    Warns
    -----
    ConvergenceWarning
        ``tol`` was given and ``max_iter`` iterations did not bring the returned plan's
        relative L1 marginal error below it.
    PrecisionWarning
        float32 coordinates so far from the origin that their spacing is a noticeable fraction
        of the clouds' size (the precision was lost before ``solve`` saw them).

    Examples
    --------
    A cloud and its translate by t: every blur gives |t|^2 / 2 (balanced, debiased).

    >>> import torch
    >>> from shapeot.ot import solve
    >>> x = torch.rand(500, 3, dtype=torch.float64)
    >>> res = solve(x, x + torch.tensor([0.3, 0.0, 0.4], dtype=torch.float64), blur=0.05)
    >>> round(float(res.value), 4)
    0.125
    """
    t0 = time.perf_counter()
    plan = _plan(x, y, a, b, blur=blur, reach=reach, scaling=scaling, debias=debias, backend=backend, mode=mode,
                 updates=updates, tol=tol, max_iter=max_iter, truncate=truncate, progress=progress, device=device)
    t1 = time.perf_counter()
    with torch.no_grad():
        pots, n_iter, kernels, info = _iterate(plan)
    t2 = time.perf_counter()
    value, f, g = _extrapolate(plan, kernels, pots)
    t3 = time.perf_counter()
    return _finalise(plan, kernels, value, f, g, n_iter, info,
                     {"setup": t1 - t0, "sinkhorn": t2 - t1, "extrapolation": t3 - t2}, t3)


@dataclass
class SolverPlan:
    """Everything :func:`solve` fixes before the first iteration: the checked inputs (centred, in
    the working dtype), the blur schedule, the mode and the backend."""

    x: torch.Tensor
    y: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    xc: torch.Tensor  # centred, differentiable in x
    yc: torch.Tensor
    center: torch.Tensor
    diam: float
    blur: float
    reach: float | None
    scaling: float
    sigmas: list[float]
    mode: str
    backend: object
    debias: bool
    alternate: bool
    tol: float | None
    max_iter: int
    truncate: float
    dtype: torch.dtype
    out_dtype: torch.dtype
    progress: Progress

    @property
    def eps(self) -> float:
        return self.blur * self.blur

    @property
    def rho(self) -> float | None:
        return None if self.reach is None else self.reach ** 2

    def lam(self, eps: float) -> float:
        """The unbalanced damping rho / (rho + eps) (1 for balanced OT)."""
        return 1.0 if self.reach is None else self.rho / (self.rho + eps)


def _plan(x, y, a, b, *, blur, reach, scaling, debias, backend, mode, updates, tol, max_iter, truncate, progress,
          device) -> SolverPlan:
    """Check every argument (each error names it), move and centre the points, choose the
    dtype, the schedule, the mode and the backend."""
    backend = check_choice("backend", backend, ("auto", "torch", "keops", "triton"))
    mode = check_choice("mode", mode, ("auto", "dense", "online", "multiscale"))
    updates = check_choice("updates", updates, ("symmetric", "alternating"))
    max_iter = check_int("max_iter", max_iter, minimum=1)
    tol = check_nonnegative("tol", tol, allow_none=True)
    truncate = check_nonnegative("truncate", truncate, allow_none=False)
    scaling = check_scaling(scaling)
    reach = check_positive("reach", reach, allow_none=True)
    blur = check_positive("blur", blur, allow_none=True)
    if not isinstance(debias, bool):
        raise ValueError(f"debias must be True or False; got {debias!r}")
    progress = as_progress(progress)
    x, y = _points(x, y, device)
    dtype = torch.float64 if torch.float64 in (x.dtype, y.dtype) else torch.float32
    x, y = x.to(dtype), y.to(dtype)
    a = as_weights("a", a, len(x), x)
    b = as_weights("b", b, len(y), y)
    check_masses(a, b, balanced=reach is None)

    # The cost is translation invariant: centring removes any offset of the coordinates (a
    # 1e9 mm origin costs nothing in float64) and float32 cancellation in |x|^2 + |y|^2 - 2<x,y>.
    with torch.no_grad():
        center = torch.cat([x, y]).mean(dim=0)
        diam = diameter(x, y)
    if blur is None:
        blur = max(0.01 * diam, 1e-12)
    out_dtype = dtype
    if dtype == torch.float32:
        _check_float32_coordinates(x, y, diam)
        if blur > diagnostics.PROMOTE_BLUR_OVER_DIAMETER * diam:
            dtype = torch.float64  # float32 would round the value away (diagnostics)
            center, a, b = center.to(dtype), a.to(dtype), b.to(dtype)
    sigmas = _schedule(diam, blur, scaling, max_iter)
    mode = choose_mode(mode, backend, x, y, dtype, debias)
    name = backend
    if backend == "auto":
        name = choose_kernels(x.device, dtype, len(x), len(y), dim=x.shape[1], mode=mode, self_terms=debias)
    return SolverPlan(x=x, y=y, a=a, b=b, xc=x.to(dtype) - center, yc=y.to(dtype) - center, center=center, diam=diam,
                      blur=blur, reach=reach, scaling=scaling, sigmas=sigmas, mode=mode,
                      backend=_backends.get(name, x.device, dtype), debias=debias, alternate=updates == "alternating",
                      tol=tol, max_iter=max_iter, truncate=truncate, dtype=dtype, out_dtype=out_dtype,
                      progress=progress)


def _points(x, y, device) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y checked, on ``device`` (when given), with matching dimensions and devices."""
    target = None if device is None else resolve_device(device)
    x = as_points("x", x)
    y = as_points("y", y)
    if target is not None:
        x, y = x.to(target), y.to(target)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} coordinates per point and y has {y.shape[1]}; they must match")
    if x.device != y.device:
        raise ValueError(f"x is on {x.device} and y on {y.device}; move both to one device (or pass device=)")
    return x, y


def _schedule(diam: float, blur: float, scaling: float, max_iter: int) -> list[float]:
    """The blur schedule, refused when it alone is longer than ``max_iter``."""
    steps = schedule_length(diam, blur, scaling)
    if steps > max_iter + 1 or len(sigmas := blur_schedule(diam, blur, scaling)) > max_iter:
        raise ValueError(
            f"scaling={scaling!r} needs about {steps:,} Sinkhorn iterations to anneal from the diameter "
            f"({diam:.3g}) down to blur={blur:.3g}, more than max_iter={max_iter}: use a smaller scaling "
            "(0.5 to 0.95) or a larger max_iter")
    return sigmas


def choose_mode(mode: str, backend: str, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype, debias: bool) -> str:
    """The solver's mode for ``mode="auto"``: multiscale where it wins, else "auto" (the backend's).

    Multiscale wins from ~5k x 5k points (``MULTISCALE_FROM_PAIRS``; benchmarks/multiscale.py)
    and above the dense memory budget, in any dimension: its truncation prunes most cluster
    pairs of points on a surface, including the 6-D position-normal pairs (x, alpha n) of the
    registration's levels (10k brains: 36 s instead of 86 s per registration), and even where
    it prunes little (uniform 6-D clouds, 8k points: 95 % of the pairs kept) the fused block
    kernel took 7.6 s where online torch took 10.9 s and KeOps 21 s on 2 CPU cores. With
    ``backend="keops"`` the mode is left to KeOps.
    """
    if mode != "auto" or backend not in ("auto", "torch", "triton"):
        return mode
    n, m = len(x), len(y)
    if n * m <= MULTISCALE_FROM_PAIRS and _backends.dense_fits(n, m, dtype, x.device, debias):
        return mode
    return "multiscale"


def _iterate(plan: SolverPlan):
    """The Sinkhorn loop over the schedule (coarse-to-fine in multiscale mode): potentials,
    iterations, the kernels of the finest scale, and the multiscale solver's information."""
    p = plan
    used = [0]  # iterations so far, over every scale: max_iter bounds their total
    final_eps = p.eps

    def tick(done: int, total: int) -> None:
        p.progress(min(done / max(total, 1), 1.0), "Sinkhorn iterations")

    def loop(ks, al, bl, eps_list, init=None):
        # tol drives extra iterations at the final blur only (not on the coarse scales).
        pots, n = _sinkhorn_loop(ks, al, bl, eps_list, p.rho, p.debias, p.tol if eps_list[-1] == final_eps else None,
                                 p.max_iter - used[0], alternate=p.alternate, init=init, tick=tick)
        used[0] += n
        return pots, n

    x0, y0 = p.xc.detach(), p.yc.detach()
    a0, b0 = p.a.detach(), p.b.detach()
    if p.mode == "multiscale":
        engine = {"keops": "keops", "triton": "triton"}.get(p.backend.name, "auto")
        return multiscale_loop(x0, y0, a0, b0, p.sigmas, p.rho, p.debias, loop=loop, truncate=p.truncate,
                               engine=engine)
    kernels = p.backend.kernels(x0, y0, self_terms=p.debias, mode=p.mode)
    pots, n_iter = loop(kernels, a0.log(), b0.log(), [s * s for s in p.sigmas])
    return pots, n_iter, kernels, {}


def _extrapolate(plan: SolverPlan, kernels, pots):
    """One more simultaneous update from the converged potentials, taken with the points as
    variables: by the envelope theorem its gradient is that of the optimum. Returns the value
    (differentiable) and the potentials f, g."""
    p, eps = plan, plan.eps
    lam = p.lam(eps)
    a_log, b_log = p.a.detach().log(), p.b.detach().log()
    f_ba, g_ab, f_aa, g_bb = pots
    f_new = lam * softmin_on(kernels.xy, eps, b_log + g_ab / eps, p.xc)
    g_new = lam * softmin_on(kernels.yx, eps, a_log + f_ba / eps, p.yc)
    if p.debias:
        f_aa = lam * softmin_on(kernels.xx, eps, a_log + f_aa / eps, p.xc)
        g_bb = lam * softmin_on(kernels.yy, eps, b_log + g_bb / eps, p.yc)
    value = _divergence(p.a, p.b, f_new, g_new, f_aa, g_bb, eps, p.rho, p.debias)
    return value, f_new, g_new


def _finalise(plan: SolverPlan, kernels, value, f_ba, g_ab, n_iter: int, info: dict, timings: dict,
              t_check: float) -> OTResult:
    """The result: checked finite, its lazy plan, its marginal error measured (and warned about
    when a requested ``tol`` was not reached)."""
    p = plan
    if p.mode == "multiscale":
        info.update(kernel_stats(kernels))
    f, g = f_ba.detach(), g_ab.detach()
    if not (torch.isfinite(value).all() and torch.isfinite(f).all() and torch.isfinite(g).all()):
        raise FloatingPointError(
            f"Sinkhorn produced non-finite values (blur={p.blur:.3g}, dtype={p.dtype}); "
            "try float64 inputs, a larger blur, or check the weights")
    a0, b0 = p.a.detach(), p.b.detach()
    plan_t = TransportPlan(kernels.yx, g, f, b0, a0, p.eps, p.center)
    transport = TransportPlan(kernels.xy, f, g, a0, b0, p.eps, p.center, transposed=plan_t)
    if p.dtype != p.out_dtype:  # solved in float64 for float32 inputs: hand back float32
        value, f, g = value.to(p.out_dtype), f.to(p.out_dtype), g.to(p.out_dtype)
        info["computed_in"] = "float64"
    res = OTResult(value=value, f=f, g=g, plan=transport, blur=p.blur, reach=p.reach, eps=p.eps,
                   backend=p.backend.name, mode=kernels.mode, n_iterations=n_iter + 1, info=info, timings=timings)
    # The plan's marginals: two more reductions, so that no non-finite or far-off plan is
    # returned silently.
    with torch.no_grad():
        err = res.marginal_error
    res.timings["check"] = time.perf_counter() - t_check
    if not math.isfinite(err):
        raise FloatingPointError(
            f"the transport plan is not finite at blur={p.blur:.3g} ({p.blur / max(p.diam, 1e-300):.2g} of the "
            f"diameter, {p.dtype}): its row sums exp((f - softmin)/eps) overflow because the potentials are not "
            "converged at this blur. Use a larger blur, a scaling closer to 1, or float64 inputs")
    rho = p.rho
    mass = float(a0.sum() + b0.sum()) if rho is None else float(
        (a0 * (-f_ba.detach().to(p.dtype) / rho).exp()).sum() + (b0 * (-g_ab.detach().to(p.dtype) / rho).exp()).sum())
    rel = err / max(mass, 1e-300)
    res.info["relative_marginal_error"] = rel
    if p.tol is not None and rel > p.tol:
        warnings.warn(
            f"the OT plan is far from its marginals (relative L1 error {rel:.3g} > tol={p.tol:g} after "
            f"{n_iter} iterations, max_iter={p.max_iter}, scaling {p.scaling}): maps and correspondences read off "
            "it are biased; raise max_iter, or use a scaling closer to 1 or a larger blur",
            diagnostics.ConvergenceWarning, stacklevel=3)
    return res


def _check_float32_coordinates(x: torch.Tensor, y: torch.Tensor, diam: float) -> None:
    """Warn when float32 coordinates are so far from the origin that their spacing (half an ulp)
    is a noticeable fraction of the clouds' size: the precision was lost before the solve."""
    with torch.no_grad():
        scale = float(torch.maximum(x.abs().max(), y.abs().max()))
    quantum = scale * 2.0**-24
    if quantum > diagnostics.COORDINATE_QUANTUM * max(diam, 0.0) and scale > 0:
        warnings.warn(
            f"float32 coordinates of magnitude {scale:.3g} are only resolved to about {quantum:.3g}, "
            f"{quantum / max(diam, 1e-300):.2g} of the clouds' diameter ({diam:.3g}): precision was lost before the "
            "solve. Centre the points before converting them to float32, or pass float64",
            diagnostics.PrecisionWarning, stacklevel=3)


def _sinkhorn_loop(k, a_log, b_log, eps_list, rho, debias, tol=None, max_iter=1000, alternate=False, init=None,
                   tick=None):
    """Symmetric log-domain Sinkhorn over the annealing schedule; returns the four potentials.

    With ``tol``, iterations continue at the last eps while the plan's relative L1 marginal
    error, read off the update itself (row sums of P = a exp((f - softmin)/eps)), exceeds ``tol``.
    """
    def lam(eps):
        return 1.0 if rho is None else rho / (rho + eps)

    def marginal_error(eps, f, ft, g, gt):
        def side(w_log, pot, pot_t):
            target = (w_log if rho is None else w_log - pot / rho).exp()
            return ((w_log + (pot - pot_t / lam(eps)) / eps).exp() - target).abs().sum(), target.sum()
        (ea, ma), (eb, mb) = side(a_log, f, ft), side(b_log, g, gt)
        return float((ea + eb) / (ma + mb).clamp_min(1e-300))

    eps_list = list(eps_list)
    if len(eps_list) > max_iter:  # never more than max_iter iterations (the solver refuses such schedules)
        eps_list = eps_list[len(eps_list) - max(1, max_iter):]
    n_schedule = len(eps_list)

    def schedule():
        yield from eps_list
        if tol is not None:
            for _ in range(max(0, max_iter - n_schedule)):
                yield eps_list[-1]

    eps = eps_list[0]
    if init is not None:
        f_ba, g_ab, f_aa, g_bb = init
    else:
        f_ba = lam(eps) * softmin_on(k.xy, eps, b_log)
        g_ab = lam(eps) * softmin_on(k.yx, eps, a_log)
        f_aa = lam(eps) * softmin_on(k.xx, eps, a_log) if debias else None
        g_bb = lam(eps) * softmin_on(k.yy, eps, b_log) if debias else None
    n_iter = 0
    for it, eps in enumerate(schedule()):
        # At the final eps (the tol iterations) plain alternating Sinkhorn: it converges about
        # twice as fast as the averaged symmetric updates, and from potentials the symmetric
        # epsilon-scaling brought close it cannot stall as it can under annealing (see solve).
        alt = alternate or it >= n_schedule
        ft = lam(eps) * softmin_on(k.xy, eps, b_log + g_ab / eps)
        gt = lam(eps) * softmin_on(k.yx, eps, a_log + (ft if alt else f_ba) / eps)
        n_iter = it + 1
        if tick is not None:
            tick(n_iter, n_schedule)
        if tol is not None and it >= n_schedule and marginal_error(eps, f_ba, ft, g_ab, gt) < tol:
            break
        f_ba, g_ab = (ft, gt) if alt else (0.5 * (f_ba + ft), 0.5 * (g_ab + gt))
        if debias:
            fa = lam(eps) * softmin_on(k.xx, eps, a_log + f_aa / eps)
            gb = lam(eps) * softmin_on(k.yy, eps, b_log + g_bb / eps)
            f_aa, g_bb = 0.5 * (f_aa + fa), 0.5 * (g_bb + gb)
    return (f_ba, g_ab, f_aa, g_bb), n_iter


def _divergence(a, b, f_ba, g_ab, f_aa, g_bb, eps, rho, debias):
    r"""The value of S_eps (or OT_eps) from the extrapolated potentials, with exact gradients.

    Balanced: OT_eps(a, b) = <a, f> + <b, g>, and OT_eps(a, a) / 2 = <a, f_aa>.
    Unbalanced (Séjourné et al. 2019, Prop. 12, with the plan's mass m = <a, e^{-f/rho}>):
    OT = rho(|a| + |b|) + eps |a||b| - (rho + eps/2)(<a, e^{-f/rho}> + <b, e^{-g/rho}>).
    Its gradient, by the envelope theorem, is sum_ij P_ij grad C_ij: differentiating the same
    expression through the extrapolated potentials gives it with the factor (rho + eps) instead
    of (rho + eps/2), so the returned tensor carries the exact value and the exact gradient.
    """
    if rho is None:
        val = (a * f_ba).sum() + (b * g_ab).sum()
        if debias:
            val = val - (a * f_aa).sum() - (b * g_bb).sum()
        return val

    ma, mb = a.sum(), b.sum()

    def ot(coef, m1, m2, e1, e2):
        return rho * (m1 + m2) + eps * m1 * m2 - coef * (e1 + e2)

    ea, eb = (a * (-f_ba / rho).exp()).sum(), (b * (-g_ab / rho).exp()).sum()
    terms = [(1.0, ma, mb, ea, eb)]
    if debias:
        eaa, ebb = (a * (-f_aa / rho).exp()).sum(), (b * (-g_bb / rho).exp()).sum()
        terms += [(-0.5, ma, ma, eaa, eaa), (-0.5, mb, mb, ebb, ebb)]
    value = sum(w * ot(rho + eps / 2, *t) for w, *t in terms)
    surrogate = sum(w * ot(rho + eps, *t) for w, *t in terms)
    return value.detach() + surrogate - surrogate.detach()
