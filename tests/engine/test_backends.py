"""Every backend and mode gives the same answer (float64), and KeOps failures never hurt the caller."""
from __future__ import annotations

import sys
import warnings

import pytest
import torch

from shapeot.ot import backends, solve
from shapeot.ot.backends import selftest
from shapeot.ot.errors import BackendFallbackWarning, BackendUnavailable

from .clouds import random_weights, shells

CONFIGS = [("torch", "dense"), ("torch", "online"), ("keops", "online")]


@pytest.fixture(params=CONFIGS, ids=["torch-dense", "torch-online", "keops"])
def config(request, working_backends):
    name, mode = request.param
    if name not in working_backends:
        pytest.skip(f"{name} is not available here: {backends.keops_verdict().reason}")
    return name, mode


@pytest.mark.slow
@pytest.mark.parametrize("reach", [None, 0.4])
def test_backends_agree_in_float64(config, reach, monkeypatch):
    monkeypatch.setattr("shapeot.ot.backends.pytorch._BLOCK_ELEMENTS", 4096)  # many online blocks
    name, mode = config
    x, y = shells(700, 500, seed=11)
    a, b = random_weights(700, 5), random_weights(500, 6)
    ref_x = x.clone().requires_grad_()
    ref = solve(ref_x, y, a, b, blur=0.03, reach=reach, backend="torch", mode="dense")
    (ref_g,) = torch.autograd.grad(ref.value, [ref_x])
    x1 = x.clone().requires_grad_()
    res = solve(x1, y, a, b, blur=0.03, reach=reach, backend=name, mode=mode)
    (g,) = torch.autograd.grad(res.value, [x1])
    assert res.backend == name and res.mode == mode
    assert abs(res.value.item() - ref.value.item()) <= 1e-5 * abs(ref.value.item())
    assert float((g - ref_g).norm() / ref_g.norm()) <= 1e-5
    assert torch.allclose(res.f, ref.f, atol=1e-5 * float(ref.f.abs().max()))
    assert torch.allclose(res.plan.barycentric_map(), ref.plan.barycentric_map(), atol=1e-7)


def test_multiscale_is_chosen_in_high_dimension_when_dense_does_not_fit(monkeypatch):
    """The engine owns the choice of mode: above the dense budget, "auto" solves coarse-to-fine
    in any D (the registration's 6-D position-normal matches rely on it), and gets the online
    solver's answer."""
    monkeypatch.setenv("SHAPEOT_DENSE_BYTES", "1000")
    monkeypatch.setenv("SHAPEOT_DISABLE_KEOPS", "1")
    backends.reset()
    try:
        x, y = shells(300, 200, d=5, seed=2)
        x, y = x.double(), y.double()
        res = solve(x, y, blur=0.1, tol=1e-5)
        ref = solve(x, y, blur=0.1, tol=1e-5, mode="online")
        assert (res.backend, res.mode) == ("torch", "multiscale")
        assert (ref.backend, ref.mode) == ("torch", "online")
        assert abs(res.value.item() - ref.value.item()) <= 1e-3 * abs(ref.value.item())
        assert torch.allclose(res.plan.barycentric_map(), ref.plan.barycentric_map(), atol=1e-3 * res.blur)
    finally:
        backends.reset()


@pytest.fixture
def crashing_selftest(monkeypatch, tmp_path):
    """A self-test child that dies of a segmentation fault, like pykeops 2.3 on an H100."""
    pytest.importorskip("pykeops")
    monkeypatch.setenv("SHAPEOT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SHAPEOT_DISABLE_KEOPS", raising=False)
    calls = []

    def command(device):
        calls.append(device)
        return [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]

    monkeypatch.setattr(selftest, "command", command)
    backends.reset()
    yield calls
    backends.reset()


def test_keops_selftest_crash_falls_back_to_torch_with_one_warning(crashing_selftest, monkeypatch):
    monkeypatch.setenv("SHAPEOT_DENSE_BYTES", "1000")  # so that an all-pairs solve would pick KeOps
    assert backends.available_backends() == ["torch"]
    verdict = backends.keops_verdict()
    assert not verdict.ok and "signal 11" in verdict.reason
    x, y = shells(200, 150, d=5, seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r1 = solve(x, y, blur=0.05, mode="online")
        r2 = solve(x, y, blur=0.05, mode="online")
    fallbacks = [w for w in caught if issubclass(w.category, BackendFallbackWarning)]
    assert len(fallbacks) == 1 and "signal 11" in str(fallbacks[0].message)
    assert r1.backend == r2.backend == "torch" and float(r1.value) == float(r2.value)
    with pytest.raises(BackendUnavailable, match="keops"):
        solve(x, y, backend="keops")
    assert crashing_selftest == ["cpu"]  # the child ran once, in a subprocess; we are still alive


def test_keops_verdict_is_cached_on_disk(crashing_selftest, tmp_path):
    assert not backends.keops_verdict().ok
    assert (tmp_path / "keops-selftest.json").exists()
    backends.reset()  # a new process would start with an empty memo
    assert not backends.keops_verdict().ok
    assert crashing_selftest == ["cpu"]  # second verdict came from the cache
