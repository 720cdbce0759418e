"""The one place that decides where the engine runs and which kernels reduce.

* :func:`resolve_device` turns a user's device name ("auto", "cpu", "cuda", "cuda:1", or a
  ``torch.device``) into a ``torch.device``, with a ``ValueError`` that names the argument for
  anything else, and for a CUDA device this machine does not have.
* :func:`choose_kernels` picks the backend of ``solve(..., backend="auto")`` from the device,
  the dtype and the problem's size: Triton on CUDA when it imports and its self-check passes
  (:func:`shapeot.ot.backends.triton.verdict`); otherwise dense PyTorch while the cost matrices
  fit in memory, KeOps when its self-test passed, and online PyTorch last. Multiscale solves
  use Triton on CUDA and the PyTorch/numba engines elsewhere.

Transfers happen only at the edges: ``solve`` moves its inputs to the device once (when asked
to with ``device=``); inside the Sinkhorn loop only the multiscale mask's O(clusters) data
crosses to the CPU, once per mask (:mod:`.backends.blocksparse`).
"""
from __future__ import annotations

import torch

DEVICE_NAMES = "'auto', 'cpu', 'cuda' or 'cuda:N'"


def resolve_device(device: "str | torch.device | None" = "auto") -> torch.device:
    """A ``torch.device`` for ``device``; "auto" (or None) is the first GPU when CUDA works, else the CPU.

    Raises
    ------
    ValueError
        For a name that is not a device ("gpu0", "cude"), a device type the engine does not
        run on, or a CUDA device this machine lacks (no CUDA, or an index past the last GPU).
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip().lower())
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"device must be {DEVICE_NAMES}; got {device!r}") from exc
    else:
        raise ValueError(f"device must be {DEVICE_NAMES} (a string or a torch.device); got {type(device).__name__}")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be {DEVICE_NAMES}; got {device!r} (the engine runs on CPUs and CUDA GPUs)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for, but CUDA is not available here (torch "
                             f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
                             "use device='cpu' or device='auto'")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device={device!r} was asked for, but this machine has {count} CUDA device(s) "
                             f"(cuda:0 to cuda:{count - 1})")
    return dev


def triton_usable(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the Triton kernels run (and passed their self-check) on ``device`` in ``dtype``."""
    from .backends import triton as tri

    return tri.verdict(device, dtype)[0]


def choose_kernels(device: "str | torch.device", dtype: torch.dtype, n: int, m: int, *, dim: int = 3,
                   mode: str = "auto", self_terms: bool = True) -> str:
    """The backend that ``backend="auto"`` uses: "triton", "torch" or "keops".

    device, dtype: where and in what the solve runs; n, m: the points on each side; dim: their
    dimension; mode: the solver's mode ("multiscale" once the solver chose it). On CUDA, Triton
    whenever it is usable (all modes); elsewhere multiscale runs on "torch" (numba on the CPU),
    small problems on dense "torch", large ones on "keops" when its self-test passed, else on
    online "torch" (warning once that KeOps was not usable).
    """
    from . import backends

    dev = torch.device(device)
    if dev.type == "cuda" and triton_usable(dev, dtype):
        return "triton"
    if mode == "multiscale":
        return "torch"
    return backends.choose(n, m, dtype, dev, self_terms).name
