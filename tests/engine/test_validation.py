"""solve() checks every argument up front, honours max_iter in total, and never returns a
silently wrong or non-finite answer: exact exception types and message fragments."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from shapeot.ot import solve
from shapeot.ot.diagnostics import ConvergenceWarning, PrecisionWarning

from .clouds import shells

X = torch.rand(60, 3, generator=torch.Generator().manual_seed(0))
Y = torch.rand(50, 3, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_iter=0), r"max_iter must be an integer >= 1; got 0"),
    (dict(max_iter=-5), r"max_iter must be an integer >= 1"),
    (dict(max_iter=2.5), r"max_iter must be an integer"),
    (dict(max_iter=True), r"max_iter must be an integer"),
    (dict(tol=math.nan), r"tol must be a finite number >= 0; got nan"),
    (dict(tol=-1e-3), r"tol must be a finite number >= 0"),
    (dict(tol="small"), r"tol must be a finite number"),
    (dict(truncate=-1.0), r"truncate must be a finite number >= 0"),
    (dict(truncate=math.inf), r"truncate must be a finite number >= 0"),
    (dict(scaling=0.0), r"scaling must be in \(0, 1\)"),
    (dict(scaling=1.5), r"scaling must be in \(0, 1\)"),
    (dict(scaling=math.nan), r"scaling must be in \(0, 1\)"),
    (dict(blur=math.inf), r"blur must be a positive, finite"),
    (dict(blur=-0.1), r"blur must be a positive"),
    (dict(reach=0.0), r"reach must be a positive"),
    (dict(reach=math.inf), r"reach must be a positive, finite"),
    (dict(backend="gpu"), r"backend must be one of 'auto', 'torch', 'keops', 'triton'; got 'gpu'"),
    (dict(mode="sparse"), r"mode must be one of"),
    (dict(updates="gauss"), r"updates must be one of"),
    (dict(debias="yes"), r"debias must be True or False"),
    (dict(progress=3), r"progress must be a callable"),
    (dict(device="gpu0"), r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'gpu0'"),
    (dict(device="mps"), r"device must be .*got 'mps'"),
    (dict(x=torch.tensor([[0.0, 1.0, 2.0]] * 3 + [[math.inf, 0.0, 0.0]])), r"x has 1 point\(s\) with NaN or infinite"),
    (dict(b=torch.full((50,), math.inf)), r"b contains NaN or infinite"),
])
def test_every_argument_is_checked_with_a_value_error_naming_it(kwargs, match):
    args = dict(x=X, y=Y, blur=0.05)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        solve(**args)


def test_cuda_asked_for_without_cuda_is_a_clear_value_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device='cuda' was asked for, but CUDA is not available"):
        solve(X, Y, device="cuda")


def test_a_schedule_longer_than_max_iter_is_refused_at_once():
    """scaling=0.999999 used to hang (millions of iterations); now it is refused before the first
    Sinkhorn iteration (the schedule is checked while planning the solve), with the number of
    iterations it would need and both arguments named."""
    calls = []
    with pytest.raises(ValueError, match=r"scaling=0\.999999 needs about [\d,]+ Sinkhorn iterations.*max_iter=1000"):
        solve(X, Y, blur=0.01, scaling=0.999999, progress=lambda fraction, message: calls.append((fraction, message)))
    assert calls == []  # progress reports every iteration: not one ran
    # the same callback is called once the schedule fits (the check above is not vacuous)
    solve(X, Y, blur=0.01, scaling=0.5, tol=None, progress=lambda fraction, message: calls.append((fraction, message)))
    assert calls and calls[-1][1] == "Sinkhorn iterations"


@pytest.mark.parametrize("mode", ["dense", "multiscale"])
def test_max_iter_bounds_the_total_iterations_including_tol(mode):
    """The schedule (every scale) and the tol iterations together stay within max_iter; a long
    schedule (scaling 0.95-0.98) runs when max_iter allows it and is refused when it does not."""
    x, y = shells(400, 300, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = solve(x, y, blur=0.01, scaling=0.9, tol=1e-12, max_iter=80, mode=mode)
        assert res.n_iterations <= 80 + 1  # + the final extrapolation
        res = solve(x, y, blur=0.01, scaling=0.95 if mode == "multiscale" else 0.98, max_iter=400, mode=mode)
    # log(0.01 / 0.9) / log(scaling) blurs: about 90 at 0.95, 225 at 0.98, all of them run.
    assert (85 if mode == "multiscale" else 220) <= res.n_iterations <= 401
    with pytest.raises(ValueError, match=r"max_iter=100"):
        solve(x, y, blur=0.01, scaling=0.98, max_iter=100, mode=mode)


def test_huge_blur_in_float32_keeps_the_value():
    """At a blur of 100 diameters float32 used to give 24 % error (exactly 0.0 at 1000): the
    solve now runs in float64 and returns float32, equal to the float64 solve."""
    x, y = shells(300, 250, seed=1)
    for ratio in (100.0, 1000.0):
        ref = solve(x, y, blur=ratio).value.item()
        res = solve(x.float(), y.float(), blur=ratio)
        assert res.value.dtype == torch.float32 and res.info["computed_in"] == "float64"
        assert ref > 0 and abs(res.value.item() - ref) <= 1e-5 * ref


def test_offset_coordinates_float64_are_exact_and_float32_warns():
    """Centring makes a 1e9 offset free in float64 (same value as without it); float32 inputs
    that far out have lost their precision before the solve: a PrecisionWarning says so."""
    x, y = shells(300, 250, seed=2)
    ref = solve(x, y, blur=0.05).value.item()
    off = torch.tensor([1e9, -1e9, 1e9], dtype=torch.float64)
    assert abs(solve(x + off, y + off, blur=0.05).value.item() - ref) <= 1e-6 * ref
    with pytest.warns(PrecisionWarning, match=r"float32 coordinates of magnitude 1e\+09"):
        solve((x + off).float(), (y + off).float(), blur=0.05)


def test_python_lists_keep_double_precision():
    x, y = shells(100, 80, seed=4)
    res = solve((x + 1e6).tolist(), (y + 1e6).tolist(), blur=0.05)
    assert res.value.dtype == torch.float64
    assert abs(res.value.item() - solve(x, y, blur=0.05).value.item()) <= 1e-8


def test_overflowing_plan_raises_floating_point_error():
    """A blur of 1e-6 of the diameter in float32: the plan's row sums overflow. This used to
    return marginal_error = inf silently; now it raises FloatingPointError."""
    x, y = shells(400, 300, seed=1)
    with pytest.raises(FloatingPointError, match=r"transport plan is not finite.*larger blur"):
        solve(x.float(), y.float(), blur=1e-6)


def test_default_plan_is_within_its_tolerance_and_an_unreachable_tol_warns():
    """By default the solver iterates at the last blur until the plan is within 5 % of its
    marginals (relative L1): it returns such a plan, without a warning, even from scaling 0.5 at
    a blur of 2 % of the box, where the schedule alone stops at 15 %. A ``tol`` that
    ``max_iter`` iterations cannot reach warns, naming it; ``tol=None`` (the schedule alone, for
    values) does not warn and reports the error."""
    x, y = shells(500, 400, seed=5)
    alone = solve(x, y, blur=0.02, scaling=0.5, tol=None)
    assert alone.info["relative_marginal_error"] > 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = solve(x, y, blur=0.02, scaling=0.5)
    assert res.info["relative_marginal_error"] <= 0.05
    assert res.n_iterations > alone.n_iterations
    # the same error measured independently, on the plan's marginals
    rows, cols = res.plan.row_sums(), res.plan.T.row_sums()
    a, b = torch.full((500,), 1 / 500), torch.full((400,), 1 / 400)
    assert float(((rows - a).abs().sum() + (cols - b).abs().sum()) / 2) <= 0.05
    with pytest.warns(ConvergenceWarning, match=r"far from its marginals.*tol=0.001.*max_iter=80"):
        short = solve(x, y, blur=0.02, scaling=0.5, tol=1e-3, max_iter=80)
    assert short.info["relative_marginal_error"] > 1e-3
