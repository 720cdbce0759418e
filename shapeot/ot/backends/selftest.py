"""Run KeOps once in a subprocess before trusting it in-process; cache the verdict.

The verdict is keyed by everything that changes what KeOps compiles: host, OS, Python, torch,
pykeops and CUDA versions and the device's name. It is kept in
``$SHAPEOT_CACHE_DIR`` (default ``~/.cache/shapeot``) as ``keops-selftest.json``, so the cost
(tens of seconds of g++ on a CPU) is paid once per machine and software stack. A crash
(segfault included), a wrong result, a time-out or a missing package all mean "not usable".

``python -m shapeot.ot.backends.selftest DEVICE`` is the child process: it compares the KeOps
reductions of :mod:`.keops` with the pure-PyTorch ones on a small problem, in float32 and float64,
and exits 0 only if they agree.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

TIMEOUT_S = float(os.environ.get("SHAPEOT_KEOPS_SELFTEST_TIMEOUT", 900))


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    key: str
    seconds: float


def cache_dir() -> Path:
    return Path(os.environ.get("SHAPEOT_CACHE_DIR") or Path.home() / ".cache" / "shapeot")


def fingerprint(device: str) -> dict:
    """What the verdict depends on."""
    import torch

    info = {
        "host": platform.node(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "cuda": torch.version.cuda,
    }
    try:
        from importlib.metadata import version

        info["pykeops"] = version("pykeops")
        info["keopscore"] = version("keopscore")
    except Exception:  # noqa: BLE001 - package metadata missing means "not installed"
        info["pykeops"] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _key(info: dict) -> str:
    return hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]


def command(device: str) -> list[str]:
    """The child process's argv (tests replace it with one that crashes)."""
    return [sys.executable, "-m", "shapeot.ot.backends.selftest", device]


def _read_cache() -> dict:
    try:
        return json.loads((cache_dir() / "keops-selftest.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(entries: dict) -> None:
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".keops-selftest-")
        with os.fdopen(fd, "w") as fh:
            json.dump(entries, fh, indent=1)
        os.replace(tmp, d / "keops-selftest.json")
    except OSError:
        pass  # an unwritable cache only costs a re-run next time


def run(device: str, *, use_cache: bool = True) -> Verdict:
    """Return the (cached) verdict for KeOps on ``device`` ("cpu" or "cuda:0")."""
    info = fingerprint(device)
    key = _key(info)
    if info.get("pykeops") is None:
        return Verdict(False, "pykeops is not installed (pip install 'shapeot[keops]')", key, 0.0)
    if use_cache:
        hit = _read_cache().get(key)
        if hit is not None:
            return Verdict(**hit)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(command(device), capture_output=True, text=True, timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
        if proc.returncode == 0:
            ok, reason = True, "self-test passed"
        else:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
            ok, reason = False, f"KeOps self-test {how}: " + " | ".join(tail)
    except subprocess.TimeoutExpired:
        ok, reason = False, f"KeOps self-test timed out after {TIMEOUT_S:.0f} s"
    except OSError as exc:
        ok, reason = False, f"KeOps self-test could not start: {exc}"
    verdict = Verdict(ok, reason, key, time.perf_counter() - t0)
    entries = _read_cache()
    entries[key] = asdict(verdict)
    _write_cache(entries)
    return verdict


def _child(device: str) -> int:
    import torch

    from .keops import KeOpsKernel
    from .pytorch import OnlineKernel

    gen = torch.Generator().manual_seed(0)
    for dtype, tol in ((torch.float32, 1e-3), (torch.float64, 1e-9)):
        x = torch.rand(300, 3, generator=gen, dtype=dtype).to(device)
        y = torch.rand(200, 3, generator=gen, dtype=dtype).to(device)
        h = torch.randn(200, generator=gen, dtype=dtype).to(device)
        ref_lse, ref_mean = OnlineKernel(x, y).lse_mean(0.01, h, y)
        lse, mean = KeOpsKernel(x, y).lse_mean(0.01, h, y)
        err = max(float((lse - ref_lse).abs().max()), float((mean - ref_mean).abs().max()))
        if not err < tol:
            print(f"KeOps disagrees with PyTorch in {dtype}: max error {err:.3g}", file=sys.stderr)
            return 3
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1] if len(sys.argv) > 1 else "cpu"))
