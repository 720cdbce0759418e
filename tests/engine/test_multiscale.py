"""Multiscale (coarse-to-fine, truncated) solutions agree with the dense ones; truncation is safe."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shapeot.ot import multiscale, solve
from shapeot.ot.backends import blocksparse
from shapeot.ot.backends.blocksparse import BlockSparseKernel
from shapeot.ot.backends.pytorch import OnlineKernel
from shapeot.ot.clusters import cluster

from .clouds import random_weights, shells

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meshes"


def _compare(x, y, a=None, b=None, *, blur, reach=None):
    """Converged dense and multiscale solves of one problem, with their x-gradients."""
    out = []
    for mode in ("dense", "multiscale"):
        xg = x.clone().requires_grad_()
        # Converged (alternating updates + tol), so that both reach the same fixed point.
        res = solve(xg, y, a, b, blur=blur, reach=reach, scaling=0.8, mode=mode, updates="alternating",
                    tol=1e-5, max_iter=2000)
        (g,) = torch.autograd.grad(res.value, [xg])
        out.append((res, g))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("reach", [None, 0.3])
def test_multiscale_agrees_with_dense_on_clouds(reach):
    x, y = shells(1500, 1200, seed=12)
    a, b = random_weights(1500, 1), random_weights(1200, 2)
    (rd, gd), (rm, gm) = _compare(x, y, a, b, blur=0.05, reach=reach)
    assert rm.mode == "multiscale" and rm.info["kept_fraction"] < 0.8  # it really truncated
    assert abs(rm.value.item() - rd.value.item()) <= 5e-3 * abs(rd.value.item())
    shift = (rm.plan.barycentric_map() - rd.plan.barycentric_map()).norm(dim=1)
    assert float(shift.max()) <= 0.01 * 0.05  # 1 % of the blur
    assert float((gm - gd).norm() / gd.norm()) <= 1e-2


@pytest.mark.slow
def test_multiscale_agrees_with_dense_on_the_sample_brains():
    from shapeot.shapes import load

    lh, rh = load(SAMPLES / "fsaverage5_lh_pial.gii"), load(SAMPLES / "fsaverage5_rh_pial.gii")
    # Every eighth vertex keeps the dense reference affordable; mirror the right hemisphere.
    x = torch.tensor(lh.points[::8])
    y = torch.tensor(rh.points[::8]) * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    (rd, gd), (rm, gm) = _compare(x, y, blur=10.0)  # mm, 5 % of the diameter: converges fast
    assert rm.info["kept_fraction"] < 0.8
    assert abs(rm.value.item() - rd.value.item()) <= 5e-3 * rd.value.item()
    shift = (rm.plan.barycentric_map() - rd.plan.barycentric_map()).norm(dim=1)
    assert float(shift.max()) <= 0.01 * 10.0
    assert float((gm - gd).norm() / gd.norm()) <= 1e-2


def _far_clusters():
    """Two blobs 2 apart; 40 % of the mass must cross the gap (70/30 against 30/70)."""
    g = torch.Generator().manual_seed(3)
    blob = lambda n, c: 0.3 * torch.rand(n, 3, generator=g, dtype=torch.float64) + c  # noqa: E731
    x = torch.cat([blob(280, 0.0), blob(120, 2.0)])
    y = torch.cat([blob(120, 0.05), blob(280, 2.05)])
    return x, y


@pytest.mark.slow
@pytest.mark.parametrize("tree", [False, True])
def test_truncation_safety_check_fires_and_recovers(tree, monkeypatch):
    if tree:  # the check must also see the parent pairs dropped wholesale
        monkeypatch.setattr(blocksparse, "DENSE_CELL_PAIRS", 0)
    x, y = _far_clusters()
    kw = dict(blur=0.1, scaling=0.8, updates="alternating", tol=1e-3, max_iter=2000)
    ref = solve(x, y, mode="dense", **kw)
    # With truncate=0 each row keeps only the clusters whose bound reaches its lower bound: with
    # the check disabled, the bound on the mass it drops is far above any tolerance...
    monkeypatch.setattr(multiscale, "MASS_TOL", 1e30)
    bad = solve(x, y, mode="multiscale", truncate=0.0, **kw)
    assert bad.info["widened"] == 0 and bad.info["dropped_mass_bound"] > 1e-2
    # ...the safety check sees it, widens the mask, and the result is the dense one.
    monkeypatch.setattr(multiscale, "MASS_TOL", 1e-5)
    res = solve(x, y, mode="multiscale", truncate=0.0, **kw)
    assert res.info["widened"] > 0 and res.info["dropped_mass_bound"] <= 1e-5
    assert abs(res.value.item() - ref.value.item()) <= 5e-3 * ref.value.item()
    shift = (res.plan.barycentric_map() - ref.plan.barycentric_map()).norm(dim=1)
    assert float(shift.max()) <= 0.01 * 0.1


@pytest.mark.slow
@pytest.mark.parametrize("tree", [False, True])
@pytest.mark.parametrize("engine", ["numba", "torch", "torch without numba"])
def test_block_sparse_engines_match_the_full_reduction(engine, tree, monkeypatch):
    """Both engines, with the mask from dense cluster bounds or from the two-level tree (parents
    first), give the full reduction to 1e-9 while skipping most pairs; without numba the mask
    is built by torch from dense bounds (no tree)."""
    monkeypatch.setattr(blocksparse, "DENSE_CELL_PAIRS", 0 if tree else 10**12)
    if engine == "torch without numba":
        monkeypatch.setattr(blocksparse.fused, "available", lambda: False)
        engine, tree = "torch", False
    x, y = shells(3000, 2500, seed=4)
    a, b = random_weights(3000, 1), random_weights(2500, 2)
    lo = torch.minimum(x.min(0).values, y.min(0).values)
    cx, cy = cluster(x, a, lo, 0.03), cluster(y, b, lo, 0.03)
    h = b.log() + 0.01 * torch.randn(2500, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    k = BlockSparseKernel(x, y, cx, cy, truncate=30.0, tol=1e-12, engine=engine)
    lse, mean = k.lse_mean(0.0005, h, y)
    ref_lse, ref_mean = OnlineKernel(x, y).lse_mean(0.0005, h, y)
    assert k.stats["tree"] is tree and cx.k > 1000  # many clusters: the tree has two real levels
    assert k.stats["kept_fraction"] < 0.2 and k.stats["max_dropped_bound"] <= 1e-12
    assert torch.allclose(lse, ref_lse, atol=1e-9) and torch.allclose(mean, ref_mean, atol=1e-9)


@pytest.mark.slow
def test_three_scales_agree_with_dense(monkeypatch):
    """With more cells than MAX_CELLS the coarse solve is itself multiscale (cells of cells, then
    cells, then points, tree masks throughout): the same value, maps and gradient as dense."""
    monkeypatch.setattr(multiscale, "MAX_CELLS", 100)
    monkeypatch.setattr(blocksparse, "DENSE_CELL_PAIRS", 0)
    # 2000 x 1600 points at blur 0.03 (~180 cells a side, ~17 cells of cells): 50 s on a slow
    # 2-core CPU; 3000 x 2500 at blur 0.02 took 160 s, 100 s of it the converged dense solve.
    x, y = shells(2000, 1600, seed=4)
    a, b = random_weights(2000, 1), random_weights(1600, 2)
    (rd, gd), (rm, gm) = _compare(x, y, a, b, blur=0.03)
    assert len(rm.info["levels"]) == 2 and max(rm.info["levels"][0]) <= 100  # three scales in all
    assert rm.info["kept_fraction"] < 0.5
    assert abs(rm.value.item() - rd.value.item()) <= 5e-3 * abs(rd.value.item())
    shift = (rm.plan.barycentric_map() - rd.plan.barycentric_map()).norm(dim=1)
    assert float(shift.max()) <= 0.01 * 0.03
    assert float((gm - gd).norm() / gd.norm()) <= 1e-2


def test_auto_picks_multiscale_when_dense_does_not_fit(monkeypatch):
    monkeypatch.setenv("SHAPEOT_DENSE_BYTES", "1000")
    x, y = shells(500, 400, seed=1)
    assert solve(x, y).mode == "multiscale"
    assert solve(x, y, mode="online").mode == "online"


@pytest.mark.slow
@pytest.mark.keops
def test_keops_ranges_engine_matches_numba_engine():
    """backend="keops" runs the fine block-sparse reductions with KeOps ranges: same masks, so
    the same value and gradient as the fused numba kernel, to float rounding."""
    from shapeot.ot import backends

    if "keops" not in backends.available_backends():
        pytest.skip(f"keops is not available here: {backends.keops_verdict().reason}")
    g = torch.Generator().manual_seed(3)
    x = 0.3 * torch.rand(3000, 3, generator=g, dtype=torch.float64)
    y = 0.3 * torch.rand(2500, 3, generator=g, dtype=torch.float64) + 0.1
    out = {}
    for backend in ("torch", "keops"):
        xg = x.clone().requires_grad_(True)
        res = solve(xg, y, blur=0.005, scaling=0.7, mode="multiscale", backend=backend)
        res.value.backward()
        out[backend] = (float(res.value.detach()), xg.grad, res.plan.barycentric_map(), res.info["engine"])
    assert out["keops"][3] == "keops" and out["torch"][3] != "keops"
    assert out["keops"][0] == pytest.approx(out["torch"][0], rel=1e-6)
    assert torch.allclose(out["keops"][1], out["torch"][1], rtol=1e-5, atol=1e-9)
    assert torch.allclose(out["keops"][2], out["torch"][2], atol=1e-6)
