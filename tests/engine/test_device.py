"""shapeot.ot.device: the one place that resolves device names and picks the kernels."""
from __future__ import annotations

import pytest
import torch

from shapeot.ot import device as dv
from shapeot.ot.backends import triton as tri


@pytest.fixture
def fake_gpus(monkeypatch):
    """A machine with two CUDA devices, as far as the resolver can tell."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_auto_is_the_gpu_when_there_is_one(fake_gpus):
    assert dv.resolve_device("auto") == torch.device("cuda")
    assert dv.resolve_device(None) == torch.device("cuda")
    assert dv.resolve_device(" CUDA:1 ") == torch.device("cuda", 1)


def test_auto_is_the_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dv.resolve_device("auto") == torch.device("cpu")
    assert dv.resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name, match", [
    ("gpu", r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'gpu'"),
    ("cuda:x", r"got 'cuda:x'"),
    ("mps", r"got 'mps' \(the engine runs on CPUs and CUDA GPUs\)"),
    (3, r"a string or a torch.device"),
    ("cuda:2", r"this machine has 2 CUDA device\(s\) \(cuda:0 to cuda:1\)"),
])
def test_bogus_device_names_are_value_errors(fake_gpus, name, match):
    with pytest.raises(ValueError, match=match):
        dv.resolve_device(name)


def test_cuda_without_cuda_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device='cuda:0' was asked for, but CUDA is not available.*device='cpu'"):
        dv.resolve_device("cuda:0")


def test_choose_kernels_prefers_triton_on_cuda_only_when_its_check_passes(monkeypatch):
    monkeypatch.setenv("SHAPEOT_DISABLE_KEOPS", "1")
    verdicts = {}
    monkeypatch.setattr(tri, "verdict", lambda device, dtype: verdicts.get(torch.device(device).type, (False, "no")))
    cuda = torch.device("cuda")
    verdicts["cuda"] = (True, "self-check passed")
    assert dv.choose_kernels(cuda, torch.float32, 100_000, 100_000, mode="multiscale") == "triton"
    assert dv.choose_kernels(cuda, torch.float32, 500, 400) == "triton"
    verdicts["cuda"] = (False, "Triton self-check failed")
    assert dv.choose_kernels(cuda, torch.float32, 100_000, 100_000, mode="multiscale") == "torch"
    # The CPU never gets Triton, even where it could run (the interpreter is for tests).
    verdicts["cpu"] = (True, "self-check passed")
    assert dv.choose_kernels("cpu", torch.float64, 500, 400) == "torch"
    assert dv.choose_kernels("cpu", torch.float64, 100_000, 100_000, mode="multiscale") == "torch"


def test_choose_kernels_without_a_gpu_keeps_the_cpu_rules(monkeypatch):
    """Dense torch while it fits, online torch beyond when KeOps is off."""
    monkeypatch.setenv("SHAPEOT_DISABLE_KEOPS", "1")
    from shapeot.ot import backends

    backends.reset()
    try:
        assert dv.choose_kernels("cpu", torch.float32, 1000, 1000) == "torch"
        monkeypatch.setenv("SHAPEOT_DENSE_BYTES", "1000")
        assert dv.choose_kernels("cpu", torch.float32, 1000, 1000, dim=5) == "torch"
    finally:
        backends.reset()


def test_triton_verdict_without_triton_or_cuda_is_a_reason_not_a_crash(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    tri.reset()
    try:
        ok, reason = tri.verdict("cpu", torch.float32)
        assert not ok and ("TRITON_INTERPRET" in reason or "not installed" in reason)
        monkeypatch.setenv("SHAPEOT_DISABLE_TRITON", "1")
        assert tri.verdict("cpu", torch.float32) == (False, "disabled by SHAPEOT_DISABLE_TRITON")
    finally:
        tri.reset()


def test_register_resolves_auto_to_one_concrete_device():
    """device="auto" is decided once, by resolve_device, for every stage of a registration."""
    import numpy as np

    import shapeot
    from shapeot.ot.device import resolve_device
    from shapeot.shapes import Shape

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(400, 3)) * np.array([30.0, 20.0, 10.0])
    config = shapeot.RegistrationConfig.from_preset("rigid", engine={"device": "auto"}, compute_metrics=False)
    reg = shapeot.register(Shape(pts, units="mm"), Shape(pts + 2.0, units="mm"), config)
    assert reg.config.engine.device == str(resolve_device("auto"))
    assert np.allclose(reg.warped.points, pts + 2.0, atol=0.5)
