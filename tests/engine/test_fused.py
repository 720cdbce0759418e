"""The fused numba kernels against a plain torch log-sum-exp over the same cluster pairs."""
import numpy as np
import pytest
import torch

fused = pytest.importorskip("shapeot.ot.backends.fused")
pytest.importorskip("numba")


def _problem(dtype, seed=0, n=300, m=260, k=12):
    rng = np.random.default_rng(seed)
    xs, ys = rng.random((n, 3)).astype(dtype), rng.random((m, 3)).astype(dtype)
    h = (rng.normal(size=m) * 3).astype(dtype)
    h[rng.random(m) < 0.05] = -np.inf  # zero weights
    xoff = np.linspace(0, n, k + 1).astype(np.int64)
    yoff = np.linspace(0, m, k + 1).astype(np.int64)
    keep = rng.random((k, k)) < 0.4
    keep[np.arange(k), np.arange(k)] = True
    indptr = np.concatenate([[0], np.cumsum(keep.sum(1))]).astype(np.int64)
    indices = np.nonzero(keep)[1].astype(np.int64)
    v = rng.normal(size=(m, 3)).astype(dtype)
    return xs, ys, h, xoff, yoff, indptr, indices, keep, v


def _reference(xs, ys, h, eps, xoff, yoff, keep, v):
    x, y, hh, vv = (torch.from_numpy(a).double() for a in (xs, ys, h, v))
    mask = torch.zeros(len(xs), len(ys), dtype=torch.bool)
    for i in range(len(xoff) - 1):
        for j in range(len(yoff) - 1):
            if keep[i, j]:
                mask[xoff[i]:xoff[i + 1], yoff[j]:yoff[j + 1]] = True
    s = hh[None, :] - torch.cdist(x, y) ** 2 / (2 * eps)
    s = torch.where(mask, s, torch.full_like(s, -float("inf")))
    lse = torch.logsumexp(s, dim=1)
    w = torch.softmax(s, dim=1)
    return lse.numpy(), (w @ vv).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [0.5, 0.01])
def test_lse_csr_matches_dense_reference(dtype, eps):
    xs, ys, h, xoff, yoff, indptr, indices, keep, v = _problem(dtype)
    ref_lse, ref_mean = _reference(xs, ys, h, eps, xoff, yoff, keep, v)
    lse, mean = fused.lse_csr(xs, ys, h, eps, xoff, yoff, indptr, indices, v)
    lse_only, none = fused.lse_csr(xs, ys, h, eps, xoff, yoff, indptr, indices)
    assert none is None
    # float32: the polynomial exp is within float32 rounding; values reach |lse| ~ 1/eps.
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    scale = np.abs(ref_lse).max()
    np.testing.assert_allclose(lse, ref_lse, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(lse_only, lse, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(mean, ref_mean, rtol=0, atol=(5e-5 if dtype == np.float32 else 1e-10))
