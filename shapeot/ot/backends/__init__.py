"""Backends of the OT engine and the choice between them.

Each backend implements the log-sum-exp reduction of :mod:`.base` and nothing else. ``torch`` is
always available. ``triton`` (fused GPU kernels, :mod:`.triton`) is offered on CUDA when Triton
imports and its self-check passes (and on the CPU under ``TRITON_INTERPRET=1``, for tests). ``keops`` is offered
only after its self-test passed in a subprocess on this
machine and software stack (:mod:`.selftest`); until then, and if it fails, ``auto`` uses
``torch`` and warns once (:class:`shapeot.ot.errors.BackendFallbackWarning`). Set
``SHAPEOT_DISABLE_KEOPS=1`` to never try KeOps.
"""
from __future__ import annotations

import os
import threading
import warnings

import torch

from ..errors import BackendFallbackWarning, BackendUnavailable
from . import selftest

_lock = threading.Lock()
_verdicts: dict[str, selftest.Verdict] = {}
_warned: set[str] = set()


def _device_key(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
    return device.type


def keops_verdict(device: torch.device | str = "cpu") -> selftest.Verdict:
    """Whether KeOps works on ``device``: run (once per process, cached on disk) its self-test."""
    key = _device_key(device)
    with _lock:
        if key not in _verdicts:
            if os.environ.get("SHAPEOT_DISABLE_KEOPS", "") not in ("", "0"):
                _verdicts[key] = selftest.Verdict(False, "disabled by SHAPEOT_DISABLE_KEOPS", "", 0.0)
            elif torch.device(key).type not in ("cpu", "cuda"):
                _verdicts[key] = selftest.Verdict(False, f"KeOps does not run on {key}", "", 0.0)
            else:
                _verdicts[key] = selftest.run(key)
        return _verdicts[key]


def reset() -> None:
    """Forget in-process verdicts and warnings (the on-disk cache stays; delete it to re-test)."""
    from . import triton as tri

    with _lock:
        _verdicts.clear()
        _warned.clear()
    tri.reset()


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """Backends that work on ``device`` now, e.g. ``["torch", "keops"]``, or ``["torch", "triton"]``
    on a GPU with Triton.

    The first call may take tens of seconds: it runs the KeOps self-test (then cached on disk).
    """
    names = ["torch"]
    if keops_verdict(device).ok:
        names.append("keops")
    from . import triton as tri

    if tri.verdict(device, torch.float32)[0]:
        names.append("triton")
    return names


def get(name: str, device: torch.device | str, dtype: torch.dtype = torch.float32):
    """The backend object for ``name`` ("torch", "keops" or "triton"), raising if it cannot run here."""
    if name == "torch":
        from .pytorch import TorchBackend

        return TorchBackend()
    if name == "keops":
        verdict = keops_verdict(device)
        if not verdict.ok:
            raise BackendUnavailable(f"backend='keops' cannot run on {_device_key(device)}: {verdict.reason}. "
                                     "Use backend='torch' or backend='auto'.")
        from .keops import KeOpsBackend

        return KeOpsBackend()
    if name == "triton":
        from . import triton as tri

        ok, reason = tri.verdict(device, dtype)
        if not ok:
            raise BackendUnavailable(f"backend='triton' cannot run on {_device_key(device)} in {dtype}: {reason}. "
                                     "Use backend='torch' or backend='auto'.")
        return tri.TritonBackend()
    raise ValueError(f"backend must be 'auto', 'torch', 'keops' or 'triton'; got {name!r}")


from .pytorch import dense_fits  # noqa: E402, F401  (re-exported for the solver)


def choose(n: int, m: int, dtype: torch.dtype, device: torch.device, self_terms: bool):
    """``auto``: dense torch while the cost matrices fit in memory, else KeOps when its
    self-test passed (2-3x the online torch throughput on CPU), else online torch."""
    from .pytorch import TorchBackend

    if dense_fits(n, m, dtype, device, self_terms):
        return TorchBackend()
    verdict = keops_verdict(device)
    if verdict.ok:
        from .keops import KeOpsBackend

        return KeOpsBackend()
    key = _device_key(device)
    if key not in _warned and not verdict.reason.startswith(("disabled", "pykeops is not installed")):
        _warned.add(key)
        warnings.warn(f"KeOps is not usable on {key} ({verdict.reason}); using the torch backend instead.",
                      BackendFallbackWarning, stacklevel=3)
    return TorchBackend()
