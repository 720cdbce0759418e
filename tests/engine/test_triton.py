"""The Triton kernels (shapeot.ot.backends.triton) against independent references.

Without a GPU they run on CPU tensors in Triton's interpreter (TRITON_INTERPRET=1, set by the
``interpreted`` fixture for each test, so that no other test sees it): the same kernel source
as on CUDA, with larger blocks (the interpreter pays per operation). References: the dense /
online PyTorch reductions (full sums, float64), the numba block-sparse engine, and dense
torch solves. The ``gpu`` test runs the kernels on CUDA and is skipped without one.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# Triton decides between compiling and interpreting when it is imported (its own library
# functions are decorated then), so on a machine without CUDA it is imported here in
# interpreter mode; the variable is then unset again, and each test sets it for itself.
if not torch.cuda.is_available() and "triton" not in sys.modules:
    _old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton  # noqa: F401
    except ImportError:
        pass
    finally:
        if _old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = _old

from shapeot.ot import solve
from shapeot.ot.backends.blocksparse import BlockSparseKernel
from shapeot.ot.backends.pytorch import OnlineKernel
from shapeot.ot.clusters import cluster

from .clouds import random_weights, shells

pytest.importorskip("triton", reason="triton is not installed (pip install triton): the Triton kernels are untested")

from shapeot.ot.backends import triton as tri  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meshes"


def _imported_for_the_interpreter() -> bool:
    import triton
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(triton.language.standard.max, InterpretedFunction)


@pytest.fixture
def interpreted(monkeypatch):
    """Run the kernels in Triton's CPU interpreter (skipped where CUDA compiles them instead)."""
    if torch.cuda.is_available() or not _imported_for_the_interpreter():
        pytest.skip("Triton was imported for compiling (CUDA present): the gpu tests cover the kernels")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    tri.reset()
    yield
    tri.reset()


def _brains(every: int = 5):
    from shapeot import load

    lh, rh = load(SAMPLES / "fsaverage5_lh_pial.gii"), load(SAMPLES / "fsaverage5_rh_pial.gii")
    x = torch.tensor(lh.points[::every])
    y = torch.tensor(rh.points[::every]) * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # mirrored
    return x, y


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_all_pairs_kernel_matches_the_full_reduction(interpreted, dtype):
    """lse and soft-max-weighted means of the all-pairs kernel equal the float64 online
    reduction: to round-off in float64, to 1e-5 relative in float32 (float32 accumulation)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(700, 3, generator=g, dtype=torch.float64), torch.rand(500, 3, generator=g, dtype=torch.float64)
    h = torch.randn(500, generator=g, dtype=torch.float64) - 6.0
    h[::50] = -float("inf")  # zero weights
    ref_lse, ref_mean = OnlineKernel(x, y).lse_mean(0.003, h, y)
    lse, mean = tri.TritonKernel(x.to(dtype), y.to(dtype)).lse_mean(0.003, h.to(dtype), y.to(dtype))
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert lse.dtype == dtype and mean.shape == (700, 3)
    assert float(((lse.double() - ref_lse) / ref_lse).abs().max()) <= tol
    assert float((mean.double() - ref_mean).abs().max()) <= tol


def _csr_pairs(x_off, y_off, indptr, indices):
    """Dense (N, M) bool: the point pairs of the kept cluster pairs."""
    n, m = int(x_off[-1]), int(y_off[-1])
    keep = torch.zeros(n, m, dtype=torch.bool)
    for i in range(len(indptr) - 1):
        for p in range(int(indptr[i]), int(indptr[i + 1])):
            j = int(indices[p])
            keep[x_off[i]:x_off[i + 1], y_off[j]:y_off[j + 1]] = True
    return keep


@pytest.mark.parametrize("block_x, gap", [(64, 32), (16, 0), (256, 256)])
def test_runs_cover_every_kept_pair(block_x, gap):
    """The tiles' runs visit a superset of the kept cluster pairs (GPU and interpreter blocks),
    and count exactly the pairs they visit; no kernel involved."""
    x, y = shells(900, 700, seed=3)
    lo = torch.minimum(x.min(0).values, y.min(0).values)
    w = lambda n: torch.ones(n, dtype=torch.float64) / n  # noqa: E731
    cx, cy = cluster(x, w(900), lo, 0.08), cluster(y, w(700), lo, 0.08)
    g = torch.Generator().manual_seed(1)
    # A local mask, as the truncation bounds give, with random holes.
    keep_c = (torch.cdist(cx.centroids, cy.centroids) < 0.2) & (torch.rand(cx.k, cy.k, generator=g) < 0.8)
    indptr = torch.zeros(cx.k + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(keep_c.sum(1), 0)
    indices = keep_c.nonzero()[:, 1].int()
    runs = tri.Runs.from_csr(cx.offsets, cy.offsets, indptr, indices, block_x=block_x, gap=gap)
    kept = _csr_pairs(cx.offsets, cy.offsets, indptr, indices)
    visited = torch.zeros_like(kept)
    for t in range(len(runs.ptr) - 1):
        for p in range(int(runs.ptr[t]), int(runs.ptr[t + 1])):
            visited[t * block_x:(t + 1) * block_x, int(runs.y0[p]):int(runs.y1[p])] = True
    assert bool((visited | ~kept).all())  # every kept pair is visited
    assert runs.pairs == int(visited.sum()) and runs.pairs < 900 * 700  # and the mask still skips


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_block_sparse_kernel_on_the_sample_brains_matches_numba_and_the_full_reduction(interpreted, dtype):
    """One block-sparse reduction on 2,000 + 2,000 brain vertices (blur 2 mm): the Triton
    engine equals the full float64 reduction (to 1e-9 in float64, 1e-5 in float32) and the
    numba engine on the same masks, while the mask keeps a small fraction of the pairs."""
    x, y = _brains(every=5)
    b = torch.ones(len(y), dtype=torch.float64) / len(y)
    lo = torch.minimum(x.min(0).values, y.min(0).values)
    cx, cy = cluster(x, torch.ones(len(x), dtype=torch.float64) / len(x), lo, 6.0), cluster(y, b, lo, 6.0)
    eps = 2.0**2
    h = b.log() + 0.3 * torch.randn(len(y), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref_lse, ref_mean = OnlineKernel(x, y).lse_mean(eps, h, y)
    tol_mask = 1e-12 if dtype == torch.float64 else 1e-7
    k = BlockSparseKernel(x.to(dtype), y.to(dtype), cx, cy, truncate=20.0, tol=tol_mask, engine="triton")
    lse, mean = k.lse_mean(eps, h.to(dtype), y.to(dtype))
    kn = BlockSparseKernel(x.to(dtype), y.to(dtype), cx, cy, truncate=20.0, tol=tol_mask, engine="numba")
    lse_n, mean_n = kn.lse_mean(eps, h.to(dtype), y.to(dtype))
    assert k.stats["kept_fraction"] < 0.2 and k.stats["visited_fraction"] < 1.0
    tol = 1e-9 if dtype == torch.float64 else 1e-5
    assert float(((lse.double() - ref_lse) / ref_lse.abs()).max()) <= tol
    assert float((mean.double() - ref_mean).norm(dim=1).max()) <= tol * 100  # mm, brain ~ 100 mm
    assert float(((lse - lse_n) / lse_n.abs()).abs().max()) <= tol
    assert float((mean - mean_n).norm(dim=1).max()) <= tol * 100


def _solve_pair(x, y, a, b, **kw):
    """Value, x-gradient and barycentric map of one solve."""
    xg = x.clone().requires_grad_()
    res = solve(xg, y, a, b, **kw)
    (grad,) = torch.autograd.grad(res.value, [xg])
    return res, grad, res.plan.barycentric_map()


@pytest.mark.parametrize("reach", [None, 0.3])
def test_multiscale_solve_with_triton_matches_the_numba_engine(interpreted, reach):
    """solve(backend="triton", mode="multiscale") on random clouds, balanced and unbalanced:
    value to 1e-5 relative, gradient and barycentric map to 1e-4, against the numba engine."""
    x, y = shells(900, 800, seed=12)
    a, b = random_weights(900, 1), random_weights(800, 2)
    kw = dict(blur=0.03, reach=reach, scaling=0.5, mode="multiscale")
    rt, gt, mt = _solve_pair(x, y, a, b, backend="triton", **kw)
    rn, gn, mn = _solve_pair(x, y, a, b, backend="torch", **kw)
    assert (rt.backend, rt.mode, rt.info["engine"]) == ("triton", "multiscale", "triton")
    assert rn.info["engine"] == "numba" and rt.info["kept_fraction"] < 0.8
    assert abs(rt.value.item() - rn.value.item()) <= 1e-5 * abs(rn.value.item())
    assert _rel(gt, gn) <= 1e-4
    assert float((mt - mn).norm(dim=1).max()) <= 1e-4 * 0.03  # 1e-4 of the blur


def test_all_pairs_solve_with_triton_matches_dense_torch(interpreted):
    """backend="triton" without multiscale reduces over all pairs: the same iterations as dense
    torch, so value, gradient and map agree to round-off (unbalanced, random weights)."""
    x, y = shells(600, 500, seed=5)
    a, b = random_weights(600, 3), random_weights(500, 4)
    kw = dict(blur=0.05, reach=0.5, scaling=0.7)
    rt, gt, mt = _solve_pair(x, y, a, b, backend="triton", mode="online", **kw)
    rd, gd, md = _solve_pair(x, y, a, b, backend="torch", mode="dense", **kw)
    assert (rt.backend, rt.mode) == ("triton", "online")
    assert abs(rt.value.item() - rd.value.item()) <= 1e-10 * abs(rd.value.item())
    assert _rel(gt, gd) <= 1e-9 and float((mt - md).abs().max()) <= 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("reach", [None, 20.0])
def test_triton_solve_on_the_sample_brains_float32(interpreted, reach):
    """The sample brains (1,000 + 1,000 vertices, mirrored rh onto lh, mm) in float32, multiscale,
    balanced and unbalanced: Triton and numba engines agree (value 1e-5, gradient and map 1e-4)."""
    x, y = _brains(every=10)
    x, y = x.float(), y.float()
    kw = dict(blur=3.0, reach=reach, scaling=0.5, mode="multiscale")
    rt, gt, mt = _solve_pair(x, y, None, None, backend="triton", **kw)
    rn, gn, mn = _solve_pair(x, y, None, None, backend="torch", **kw)
    assert rt.info["engine"] == "triton" and rt.value.dtype == torch.float32
    assert abs(rt.value.item() - rn.value.item()) <= 1e-5 * abs(rn.value.item())
    assert _rel(gt, gn) <= 1e-4
    assert float((mt - mn).norm(dim=1).max()) <= 1e-4 * 100  # mm: 1e-4 of the brain's size


def test_masks_are_reused_only_while_their_bound_holds(interpreted):
    """With the Triton engine a mask serves several reductions at one eps while the cluster
    log-masses move little; a large move (or a new eps) rebuilds it."""
    x, y = shells(800, 700, seed=2)
    b = torch.ones(700, dtype=torch.float64) / 700
    lo = torch.minimum(x.min(0).values, y.min(0).values)
    cx, cy = cluster(x, torch.ones(800, dtype=torch.float64) / 800, lo, 0.06), cluster(y, b, lo, 0.06)
    k = BlockSparseKernel(x, y, cx, cy, engine="triton")
    h = b.log()
    k.lse(1e-3, h)
    k.lse(1e-3, h + 1e-9)  # moved by 1e-9: same mask
    assert k.stats["mask_builds"] == 1
    k.lse(1e-3, h + 5.0 * torch.rand(700, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    k.lse(5e-4, h)
    assert k.stats["mask_builds"] == 3
    lse = k.lse(5e-4, h)
    assert torch.allclose(lse, OnlineKernel(x, y).lse(5e-4, h), rtol=1e-5)


def test_available_backends_lists_triton_under_the_interpreter(interpreted, monkeypatch):
    from shapeot.ot import available_backends

    monkeypatch.setenv("SHAPEOT_DISABLE_KEOPS", "1")
    from shapeot.ot import backends

    backends.reset()
    try:
        assert "triton" in available_backends("cpu")
        monkeypatch.setenv("SHAPEOT_DISABLE_TRITON", "1")
        assert "triton" not in available_backends("cpu")
    finally:
        backends.reset()


def test_triton_on_the_cpu_without_the_interpreter_is_refused(monkeypatch):
    from shapeot.ot.errors import BackendUnavailable

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    tri.reset()
    with pytest.raises(BackendUnavailable, match="TRITON_INTERPRET"):
        solve(torch.rand(20, 3), torch.rand(30, 3), backend="triton")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("reach", [None, 0.3])
def test_triton_on_cuda_matches_the_cpu_engine(reach, monkeypatch):
    """On a GPU: the compiled kernels (multiscale, float32) against the CPU numba engine in
    float64 (value 1e-4 relative, gradient 1e-3), and the all-pairs kernel against float64."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    tri.reset()
    ok, reason = tri.verdict("cuda", torch.float32)
    assert ok, reason
    x, y = shells(20000, 18000, seed=7)
    kw = dict(blur=0.02, reach=reach, scaling=0.7, mode="multiscale")
    rc, gc, mc = _solve_pair(x.float().cuda(), y.float().cuda(), None, None, backend="auto", **kw)
    rn, gn, mn = _solve_pair(x, y, None, None, backend="torch", **kw)
    assert (rc.backend, rc.info["engine"]) == ("triton", "triton")
    assert abs(rc.value.item() - rn.value.item()) <= 1e-4 * abs(rn.value.item())
    assert _rel(gc.double().cpu(), gn) <= 1e-3
    assert float((mc.double().cpu() - mn).norm(dim=1).max()) <= 1e-3 * 0.02 * 10
    g = torch.Generator().manual_seed(0)
    xs = torch.rand(5000, 3, generator=g, dtype=torch.float64)
    ys = torch.rand(4000, 3, generator=g, dtype=torch.float64)
    h = torch.randn(4000, generator=g, dtype=torch.float64)
    ref_lse, ref_mean = OnlineKernel(xs, ys).lse_mean(1e-3, h, ys)
    kernel = tri.TritonKernel(xs.float().cuda(), ys.float().cuda())
    lse, mean = kernel.lse_mean(1e-3, h.float().cuda(), ys.float().cuda())
    assert float(((lse.double().cpu() - ref_lse) / ref_lse.abs()).max()) <= 1e-5
    assert float((mean.double().cpu() - ref_mean).abs().max()) <= 1e-5
