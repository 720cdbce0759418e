"""Shared helpers of the benchmarks: the anchors' clouds, timing, peak memory, JSON output."""
from __future__ import annotations

import ctypes
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def shells(n: int, seed: int = 0, dtype=torch.float64):
    """The anchors' clouds (../shared/anchors/anchors_gpu.py): a noisy sphere shell against a
    twisted ellipsoid shell, both inside the unit cube, N points each."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, 3, generator=g, dtype=dtype)
    u = u / u.norm(dim=1, keepdim=True)
    x = 0.3 * u + 0.01 * torch.randn(n, 3, generator=g, dtype=dtype) + 0.5
    v = torch.randn(n, 3, generator=g, dtype=dtype)
    v = v / v.norm(dim=1, keepdim=True) * torch.tensor([0.4, 0.2, 0.25], dtype=dtype)
    t = 2.0 * v[:, 2:3]
    c, s = torch.cos(t), torch.sin(t)
    y = torch.cat([c * v[:, :1] - s * v[:, 1:2], s * v[:, :1] + c * v[:, 1:2], v[:, 2:]], 1) + 0.5
    return x, y + torch.tensor([0.05, -0.03, 0.02], dtype=dtype)


def peak_rss_gb() -> float:
    """Peak resident memory (GB) of this process's own address space: VmHWM from /proc.

    Not ``ru_maxrss``: a process started by (v)fork + exec inherits its parent's high-water mark
    there, so a child of a large process (pytest, a benchmark driver, a Dask nanny) would report
    the parent's peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e6  # kB
    return float("nan")


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms from /proc (CPU runs)."""

    def __init__(self):
        self.peak = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        try:  # hand freed heap back to the OS so that the baseline is honest
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        self.base = self._rss()
        self._stop = False
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop:
            self.peak = max(self.peak, self._rss() - self.base)
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join()
        self.peak = max(self.peak, self._rss() - self.base)


def median_time(fn, reps: int, sync=lambda: None, warmup: bool = True) -> tuple[float, object, int]:
    """Warm-up call (unless ``warmup`` is False: huge sizes), then the median of ``reps`` timed
    calls; also the peak memory of one call."""
    if warmup:
        fn()
        sync()
    times = []
    with PeakRSS() as mem:
        for _ in range(reps):
            t = time.perf_counter()
            out = fn()
            sync()
            times.append(time.perf_counter() - t)
    return statistics.median(times), out, mem.peak


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    else:
        info["device"] = "cpu"
    for pkg in ("pykeops", "geomloss", "pot"):
        try:
            from importlib.metadata import version

            info[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - absent peer
            info[pkg] = None
    return info


def write(name: str, info: dict, rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = "cpu" if info["device"] == "cpu" else info["device"].replace(" ", "-")
    path = RESULTS / f"{name}-{tag}-{time.strftime('%Y-%m-%d')}.json"
    path.write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    return path


def table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
