"""Shared helpers of the GPU benchmark stages: rows with memory figures, timing, JSON output.

Every row carries ``gpu_peak_mib`` (torch's peak allocated memory since the row's start, CUDA
only) and ``host_max_rss_mib`` (the process's peak resident set so far). A failing measurement
becomes a row with ``error`` instead of ending the stage.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback

import torch


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def host_rss_mib() -> float:
    # VmHWM, not ru_maxrss: the latter inherits the high-water mark of whoever exec'd us.
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    return float("nan")


def median_time(fn, reps: int = 5) -> float:
    """Median wall time of fn() over ``reps`` runs after one warm-up, synchronised."""
    fn()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


class Rows:
    """Collects rows and writes them (after each row, so a killed stage keeps what it had)."""

    def __init__(self, path: str, stage: str, deadline_s: float):
        self.path, self.stage = path, stage
        self.t0 = time.time()
        self.deadline = self.t0 + deadline_s
        self.rows: list[dict] = []
        self.info = {"stage": stage, "device": device(), "torch": torch.__version__, "python": sys.version.split()[0],
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
        try:
            import triton

            self.info["triton"] = triton.__version__
        except Exception as exc:  # noqa: BLE001
            self.info["triton"] = f"not importable: {exc!r}"[:200]

    def left(self) -> float:
        return self.deadline - time.time()

    def measure(self, name: str, fn, **fields) -> dict | None:
        """Run fn() -> dict of results, record it with memory figures, or record the error."""
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        row = {"name": name, **fields}
        t = time.perf_counter()
        try:
            row.update(fn())
            ok = True
        except Exception as exc:  # noqa: BLE001 - recorded, the stage goes on
            row["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            row["traceback"] = traceback.format_exc()[-3000:]
            ok = False
        row["wall_s"] = round(time.perf_counter() - t, 4)
        if torch.cuda.is_available():
            row["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        row["host_max_rss_mib"] = round(host_rss_mib(), 1)
        self.rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "traceback"}), flush=True)
        self.write()
        return row if ok else None

    def write(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"info": self.info, "rows": self.rows}, fh, indent=1)
        os.replace(tmp, self.path)
