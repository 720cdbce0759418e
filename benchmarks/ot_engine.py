"""Benchmark of the OT engine beside GeomLoss and POT, on the same clouds, in one process.

Value + gradient (w.r.t. x) of the debiased Sinkhorn divergence, cost |x-y|^2/2, float32,
blur = 0.01 (1 % of the unit cube; the anchors' setting), scaling 0.5 (and 0.8), N = M points in
3D (sizes from $SIZES, default 1000,5000,10000,50000). Reports the median time, the peak memory
above the starting level and the relative error against POT's exact ``ot.emd2`` where N <= 5000.
POT's own ``sinkhorn2(method="sinkhorn_log")`` is left out: with no epsilon-scaling it needs
thousands of iterations at eps = 1e-4 and, differentiated through its loop by autograd, did not
finish at N = 1000 within 5 minutes here.
Prints a Markdown table and writes benchmarks/results/ot_engine-<device>-<date>.json.

    python benchmarks/ot_engine.py            # ~40 minutes on a 2-core CPU (50k is the slow part)
    SIZES=1000,5000 python benchmarks/ot_engine.py
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, median_time, shells, table, write  # noqa: E402

from shapeot.ot import available_backends, solve  # noqa: E402

SIZES = [int(s) for s in os.environ.get("SIZES", "1000,5000,10000,50000").split(",")]
BLUR = float(os.environ.get("BLUR", 0.01))
SCALINGS = [float(s) for s in os.environ.get("SCALINGS", "0.5,0.8").split(",")]
DEV = "cuda" if torch.cuda.is_available() else "cpu"


def sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def reps_for(n: int) -> int:
    return 3 if n <= 10_000 else 1


def main():
    info = machine()
    info["backends"] = available_backends(DEV)
    print(info, flush=True)
    rows: list[dict] = []
    refs: dict[int, float] = {}

    def record(**row):
        ref = refs.get(row["n"])
        if ref is not None and row.get("value") is not None:
            row["rel_err"] = abs(row["value"] - ref) / ref
        rows.append(row)
        print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)

    import ot as pot

    for n in SIZES:
        if n > 5000:
            continue
        x, y = shells(n)
        w = np.full(n, 1.0 / n)
        t = time.perf_counter()
        refs[n] = float(pot.emd2(w, w, pot.dist(x.numpy(), y.numpy()) / 2, numItermax=10_000_000))
        record(lib="POT", backend="emd2 (exact, float64)", n=n, time_s=time.perf_counter() - t, value=refs[n])

    def run_shapeot(n, backend, mode, scaling, updates="symmetric"):
        x, y = shells(n)
        x, y = x.to(DEV, torch.float32), y.to(DEV, torch.float32)

        def f():
            xg = x.clone().requires_grad_()
            res = solve(xg, y, blur=BLUR, scaling=scaling, backend=backend, mode=mode, updates=updates)
            torch.autograd.grad(res.value, [xg])
            return res
        t, res, mem = median_time(f, reps_for(n), sync)
        record(lib="shapeot", backend=f"{res.backend}-{res.mode}" + ("" if updates == "symmetric" else " alternating"),
               n=n, scaling=scaling, time_s=t, peak_mb=mem / 2**20, value=res.value.item(),
               iterations=res.n_iterations)

    def run_geomloss(n, backend, scaling):
        from geomloss import SamplesLoss

        x, y = shells(n)
        x, y = x.to(DEV, torch.float32), y.to(DEV, torch.float32)
        loss = SamplesLoss("sinkhorn", p=2, blur=BLUR, scaling=scaling, backend=backend)

        def f():
            xg = x.clone().requires_grad_()
            v = loss(xg, y)
            torch.autograd.grad(v, [xg])
            return v
        t, v, mem = median_time(f, reps_for(n), sync)
        record(lib="GeomLoss", backend=backend, n=n, scaling=scaling, time_s=t, peak_mb=mem / 2**20, value=v.item())

    for n in SIZES:
        for scaling in SCALINGS:
            if n > 10_000 and scaling != SCALINGS[0]:
                continue  # 50k at scaling 0.8 would take most of an hour per peer on 2 cores
            configs = [("torch", "auto")]
            if n > 10_000 and "keops" not in info["backends"]:
                configs = [("torch", "online")]
            if n <= 10_000 and "keops" in info["backends"]:
                configs.append(("keops", "online"))
            elif "keops" in info["backends"]:
                configs = [("keops", "online")] + ([("torch", "online")] if os.environ.get("TORCH_ONLINE_50K") else [])
            for backend, mode in configs:
                run_shapeot(n, backend, mode, scaling)
            if n <= 10_000:
                run_shapeot(n, "torch", "auto", scaling, updates="alternating")
                run_geomloss(n, "tensorized", scaling)
            if "keops" in info["backends"]:
                run_geomloss(n, "online", scaling)
        path = write("ot_engine-" + "-".join(str(s) for s in SIZES), info, rows)
    print()
    print(table(rows, ["lib", "backend", "n", "scaling", "time_s", "peak_mb", "rel_err", "value"]))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
