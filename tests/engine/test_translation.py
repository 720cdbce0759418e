"""A translated copy of a brain: the exact OT value and map are known analytically.

For y = x + t with equal weights, the optimal plan is the identity, OT = |t|^2 / 2, and the
debiased Sinkhorn divergence tends to the same value as blur -> 0 (the entropic bias cancels
between OT_eps(a, b) and the self-terms, which are translation invariant). This case defeated
Gauss-Seidel ("alternating") updates under epsilon-scaling (value -0.5 instead of 7 mm^2, see
solve's docstring); the default symmetric updates must get it right.
"""
import numpy as np
import pytest
import torch

import shapeot
from shapeot.ot import solve


@pytest.fixture(scope="module")
def brain():
    s = shapeot.load("sample_meshes/fsaverage5_lh_pial.gii")
    idx = np.random.default_rng(0).permutation(s.n_points)[:1500]
    x = torch.tensor(s.points[idx], dtype=torch.float64)
    a = torch.tensor(s.weights[idx], dtype=torch.float64)
    return x, a / a.sum()


SHIFT = torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64)  # mm; |t|^2 / 2 = 7 mm^2


def test_symmetric_recovers_translation(brain):
    x, a = brain
    y = x + SHIFT
    res = solve(x, y, a, a, blur=1.0, scaling=0.5)
    assert float(res.value) == pytest.approx(7.0, rel=1e-3)
    err = (res.plan.barycentric_map() - y).norm(dim=1)
    # Mean point spacing is ~6 mm at 1.5k points; blur 1 mm: maps land on the twin to a fraction of it.
    assert float(err.mean()) < 0.3
    # Gradient of |t|^2/2 in x is -t per unit mass: weighted by a_i for each point.
    x = x.clone().requires_grad_(True)
    solve(x, y, a, a, blur=1.0, scaling=0.5).value.backward()
    g = x.grad / a[:, None]
    assert torch.allclose(g.mean(dim=0), -SHIFT, atol=0.05)

