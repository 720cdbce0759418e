"""Bad input raises ValueError naming the argument and the fix; nothing returns NaN silently."""
from __future__ import annotations

import math

import pytest
import torch

from shapeot.ot import solve
from shapeot.ot.diagnostics import ConvergenceWarning

X = torch.rand(50, 3)
Y = torch.rand(40, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=torch.tensor([[0.0, math.nan, 0.0]] * 5), y=Y), r"x has 5 point\(s\) with NaN"),
    (dict(x=X, y=torch.full((4, 3), math.inf)), r"y has 4 point\(s\) with NaN or infinite"),
    (dict(x=torch.empty(0, 3), y=Y), r"x is empty"),
    (dict(x=X, y=torch.rand(40, 2)), r"x has 3 coordinates per point and y has 2"),
    (dict(x=torch.rand(50), y=Y), r"expected \(N, D\)"),
    (dict(x=X, y=Y, a=-torch.ones(50) / 50), r"a has 50 negative weight"),
    (dict(x=X, y=Y, b=torch.full((40,), math.nan)), r"b contains NaN"),
    (dict(x=X, y=Y, a=torch.ones(49) / 49), r"a has shape \(49,\); expected \(50,\)"),
    (dict(x=X, y=Y, a=torch.ones(50) / 25), r"unequal|equal total masses.*reach"),
    (dict(x=X, y=Y, a=torch.ones(50), b=torch.ones(40) * 1.25), r"sum to 1.*normalise"),
    (dict(x=X, y=Y, a=torch.zeros(50)), r"a sums to 0"),
    (dict(x=X, y=Y, blur=0.0), r"blur must be a positive"),
    (dict(x=X, y=Y, blur=-1.0), r"blur must be a positive"),
    (dict(x=X, y=Y, reach=math.nan), r"reach must be a positive"),
    (dict(x=X, y=Y, scaling=1.0), r"scaling must be in \(0, 1\)"),
    (dict(x=X, y=Y, backend="cuda"), r"backend must be"),
])
def test_bad_input_raises_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve(**kwargs)


def test_unequal_masses_are_fine_when_unbalanced():
    """Masses 2 and 1 are refused only by balanced OT: unbalanced OT converges to a plan within
    the default tolerance of its marginals a exp(-f/rho), b exp(-g/rho) (first-order
    conditions), and the plan's two marginals carry one and the same mass."""
    res = solve(X, Y, a=torch.ones(50) / 25, reach=0.5)
    assert torch.isfinite(res.value) and res.info["relative_marginal_error"] <= 0.05
    rows, cols = float(res.plan.row_sums().sum()), float(res.plan.T.row_sums().sum())
    assert rows > 0 and abs(rows - cols) <= 1e-5 * rows


def test_tiny_blur_in_float32_stays_finite():
    """At a blur of 1e-4 (float32, 50 points) the schedule's potentials stay finite in the log
    domain and the plan's error is measured and reported (not NaN); such a plan cannot reach the
    default tolerance within max_iter, and says so."""
    res = solve(X, Y, blur=1e-4, tol=None)
    assert torch.isfinite(res.value) and torch.isfinite(res.f).all() and torch.isfinite(res.g).all()
    assert math.isfinite(res.info["relative_marginal_error"])
    with pytest.warns(ConvergenceWarning, match="tol=0.05"):
        solve(X, Y, blur=1e-4, max_iter=100)
