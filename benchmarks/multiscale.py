"""Multiscale engine beside GeomLoss's multiscale backend (KeOps on the CPU) and POT, in one process.

Data: (a) the anchors' clouds (noisy sphere shell vs twisted ellipsoid shell, unit cube);
(b) the two sample hemispheres (fsaverage5 pial, left vs mirrored right, mm; blur = 1 % of the
diameter); (c) the left hemisphere resampled uniformly on its surface to 200k and 1M points
against the mirrored right one (shapeot alone). Value + gradient (w.r.t. x), float32, blur 1 % of
the diameter (0.01 on the unit cube), scaling 0.5 and 0.8. Median time, peak memory above the
starting level, relative error against POT's exact emd2 where N <= 5000, else against a
high-accuracy reference: shapeot at blur / 10 and scaling 0.95, with GeomLoss at the same
settings beside it up to REF_PEER_MAX points (the two must agree: their gap is recorded); also
the relative gap between shapeot and GeomLoss at the benchmark's own settings.
JSON: benchmarks/results/multiscale-<device>-<date>.json.

    python benchmarks/multiscale.py                # SIZES=5000,10000,50000 BIG=200000,1000000
                                                   # REF=1 REF_PEER_MAX=10000 PEERS=1
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, median_time, shells, table, write  # noqa: E402

from shapeot.ot import solve  # noqa: E402

SIZES = [int(s) for s in os.environ.get("SIZES", "5000,10000,50000").split(",") if s]
BIG = [int(s) for s in os.environ.get("BIG", "200000,1000000").split(",") if s]
SCALINGS = [float(s) for s in os.environ.get("SCALINGS", "0.5,0.8").split(",")]
PEERS = os.environ.get("PEERS", "1") == "1"
REF = os.environ.get("REF", "1") == "1"
REF_PEER_MAX = int(os.environ.get("REF_PEER_MAX", "10000"))
SAMPLES = Path(__file__).resolve().parents[1] / "sample_meshes"


def brains(n: int | None = None, seed: int = 0):
    """Left pial (vertices, or n points sampled uniformly on its surface) vs the mirrored right."""
    from shapeot.shapes import load

    lh, rh = load(SAMPLES / "fsaverage5_lh_pial.gii"), load(SAMPLES / "fsaverage5_rh_pial.gii")
    y = rh.points * np.array([-1.0, 1.0, 1.0])
    if n is None:
        return torch.tensor(lh.points), torch.tensor(y)
    import trimesh

    def sample(points, faces, k, s):
        pts, _ = trimesh.sample.sample_surface(trimesh.Trimesh(points, faces, process=False), k, seed=s)
        return torch.tensor(np.asarray(pts))
    return sample(lh.points, lh.faces, n, seed), sample(y, rh.faces[:, ::-1], n, seed + 1)


def main():
    info = machine()
    print(info, flush=True)
    rows: list[dict] = []

    def record(**row):
        rows.append(row)
        print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)

    def bench(data, n, x, y, blur, scaling, peers, ref=None):
        x32, y32 = x.float(), y.float()
        reps = 3 if n <= 10_000 else 1

        def ours():
            xg = x32.clone().requires_grad_()
            res = solve(xg, y32, blur=blur, scaling=scaling, mode="multiscale")
            torch.autograd.grad(res.value, [xg])
            return res
        t, res, mem = median_time(ours, reps, warmup=n <= 200_000)  # the 1M run: one cold solve
        mine = res.value.item()
        record(data=data, lib="shapeot", backend=f"multiscale ({res.info['engine']})", n=n, scaling=scaling,
               time_s=t, peak_mb=mem / 2**20, value=mine, rel_err=None if ref is None else abs(mine - ref) / ref,
               kept=res.info.get("kept_fraction"), iterations=res.n_iterations)
        if not peers:
            return
        from geomloss import SamplesLoss

        loss = SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling, backend="multiscale")

        def theirs():
            xg = x32.clone().requires_grad_()
            v = loss(xg, y32)
            torch.autograd.grad(v, [xg])
            return v.detach()
        t2, v, mem2 = median_time(theirs, reps)
        record(data=data, lib="GeomLoss", backend="multiscale (KeOps CPU)", n=n, scaling=scaling, time_s=t2,
               peak_mb=mem2 / 2**20, value=float(v),
               rel_err=None if ref is None else abs(float(v) - ref) / ref,
               gap_to_shapeot=abs(float(v) - mine) / abs(mine), speedup=t2 / t)

    def fine_reference(data, n, x, y, blur, peers):
        """Where exact OT does not fit: the debiased divergence at blur / 10, scaling 0.95, which
        is within a fraction of a percent of W2^2 / 2 (the entropic bias shrinks like blur^2)."""
        x32, y32 = x.float(), y.float()
        t = time.perf_counter()
        ref = solve(x32, y32, blur=blur / 10, scaling=0.95, mode="multiscale").value.item()
        record(data=data, lib="shapeot", backend="reference: blur/10, scaling 0.95", n=n, scaling=0.95,
               time_s=time.perf_counter() - t, value=ref)
        if peers and n <= REF_PEER_MAX:
            from geomloss import SamplesLoss

            t = time.perf_counter()
            v = float(SamplesLoss("sinkhorn", p=2, blur=blur / 10, scaling=0.95, backend="multiscale")(x32, y32))
            record(data=data, lib="GeomLoss", backend="reference: blur/10, scaling 0.95", n=n, scaling=0.95,
                   time_s=time.perf_counter() - t, value=v, gap_to_shapeot=abs(v - ref) / abs(ref))
        return ref

    import ot as pot

    for n in SIZES:
        x, y = shells(n)
        ref = None
        if n <= 5000:
            w = np.full(n, 1.0 / n)
            t = time.perf_counter()
            ref = float(pot.emd2(w, w, pot.dist(x.numpy(), y.numpy()) / 2, numItermax=10_000_000))
            record(data="shells", lib="POT", backend="emd2 exact (float64)", n=n, time_s=time.perf_counter() - t,
                   value=ref)
        elif REF:
            ref = fine_reference("shells", n, x, y, 0.01, PEERS)
        for s in SCALINGS:
            bench("shells", n, x, y, 0.01, s, PEERS, ref)
        write("multiscale", info, rows)

    x, y = brains()
    diam = float((torch.cat([x, y]).amax(0) - torch.cat([x, y]).amin(0)).norm())
    ref = fine_reference("brains", len(x), x, y, 0.01 * diam, PEERS) if REF else None
    for s in SCALINGS:
        bench("brains", len(x), x, y, 0.01 * diam, s, PEERS, ref)
    write("multiscale", info, rows)

    for n in BIG:
        x, y = brains(n)
        bench("brains-resampled", n, x, y, 0.01 * diam, SCALINGS[0], False)
        write("multiscale", info, rows)

    print()
    print(table(rows, ["data", "lib", "backend", "n", "scaling", "time_s", "peak_mb", "rel_err", "gap_to_shapeot",
                       "speedup", "kept"]))
    print(f"\nwrote {write('multiscale', info, rows)}")


if __name__ == "__main__":
    main()
