"""Stage 2 of benchmarks/gpu/run.sh: value + gradient of the engine beside its GPU peers.

For each size N (10k, 100k, 1M by default): two 3D shapes in the unit cube (a noisy sphere
shell and a twisted, shifted ellipsoid shell, N points each, uniform weights), blur = 1 % of
the diameter, scaling 0.5, float32, cost |x - y|^2 / 2. Rows:

* ``reference``: shapeot in float64 at the same blur and scaling 0.95 (the debiased value is
  accurate without converged marginals), what the fast rows' ``rel_err`` is measured against;
* ``shapeot``: ``solve(..., backend="auto")`` value + gradient (median of 5 after a warm-up),
  with the backend, mode and engine used, the kept and visited fractions of the pairs;
* peers, when importable: GeomLoss ``SamplesLoss`` tensorized (N <= 20k) and FlashSinkhorn
  (symmetric value + gradient up to 200k, multiscale forward), at the same settings.

    python benchmarks/gpu/bench_engine.py --out rows.json [--sizes 10000,100000] [--budget 240]
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Rows, device, median_time  # noqa: E402


def clouds(n: int, seed: int = 0):
    """A noisy sphere shell and a twisted ellipsoid shell (n points each) in the unit cube."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, 3, generator=g, dtype=torch.float64)
    x = 0.3 * u / u.norm(dim=1, keepdim=True) + 0.01 * torch.randn(n, 3, generator=g, dtype=torch.float64) + 0.5
    v = torch.randn(n, 3, generator=g, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True) * torch.tensor([0.4, 0.2, 0.25], dtype=torch.float64)
    turn = 2.0 * v[:, 2]
    c, s = torch.cos(turn), torch.sin(turn)
    y = torch.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1], v[:, 2]], 1)
    return x, y + torch.tensor([0.55, 0.47, 0.52], dtype=torch.float64)


def _peer(rows, module: str, label: str, n: int):
    """The peer's module, or None; a peer that does not import gets one row saying why (at 10k)."""
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure to import is reported, not fatal
        if n == 10_000:
            error = {"error": f"not importable: {exc!r}"[:300]}  # exc is unbound after the block
            rows.measure(label, lambda: error, n=n)
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--budget", type=float, default=240.0, help="seconds for the whole stage")
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    warnings.simplefilter("ignore")  # ConvergenceWarning at scaling 0.5 is expected here

    from shapeot.ot import available_backends, solve
    from shapeot.ot.schedule import diameter

    dev = device()
    rows = Rows(args.out, "engine", args.budget)
    rows.info["backends"] = available_backends(dev)
    for n in [int(s) for s in args.sizes.split(",") if s]:
        if rows.left() < 20:
            rows.measure("skipped", lambda: {"error": "stage budget spent"}, n=n)
            continue
        x64, y64 = clouds(n)
        blur = 0.01 * diameter(x64, y64)
        ref = {}

        def reference():
            res = solve(x64.to(dev), y64.to(dev), blur=blur, scaling=0.95, max_iter=3000)
            ref["value"] = res.value.item()
            return {"value": ref["value"], "backend": res.backend, "mode": res.mode,
                    "iterations": res.n_iterations, "marginal_error": res.marginal_error}

        if n <= 1_000_000 and rows.left() > 60:
            rows.measure("reference shapeot float64 scaling 0.95", reference, n=n, blur=blur)

        x, y = x64.to(dev, torch.float32), y64.to(dev, torch.float32)

        def rel(v):
            r = ref.get("value")
            return None if r is None else abs(v - r) / abs(r)

        def shapeot_run():
            xg = x.clone().requires_grad_()
            out = {}

            def once():
                res = solve(xg, y, blur=blur, scaling=0.5)
                (grad,) = torch.autograd.grad(res.value, [xg])
                out["res"], out["grad"] = res, grad

            t = median_time(once, args.reps)
            res = out["res"]
            return {"time_s": t, "value": res.value.item(), "rel_err": rel(res.value.item()), "backend": res.backend,
                    "mode": res.mode, "engine": res.info.get("engine"), "iterations": res.n_iterations,
                    "kept_fraction": res.info.get("kept_fraction"), "marginal_error": res.marginal_error,
                    "grad_finite": bool(torch.isfinite(out["grad"]).all()), "timings": res.timings}

        rows.measure("shapeot value+grad float32 scaling 0.5", shapeot_run, n=n, blur=blur, scaling=0.5)

        geomloss = _peer(rows, "geomloss", "geomloss", n)
        if geomloss is not None and n <= 20_000 and rows.left() > 30:
            def geomloss_run():
                loss = geomloss.SamplesLoss("sinkhorn", p=2, blur=blur, scaling=0.5, backend="tensorized")
                xg = x.clone().requires_grad_()
                val = {}

                def once():
                    v = loss(xg, y)
                    torch.autograd.grad(v, [xg])
                    val["v"] = float(v)
                t = median_time(once, args.reps)
                return {"time_s": t, "value": val["v"], "rel_err": rel(val["v"])}
            rows.measure("geomloss tensorized value+grad", geomloss_run, n=n, blur=blur, scaling=0.5)

        fsk = _peer(rows, "flash_sinkhorn", "flash_sinkhorn", n)
        if fsk is not None and dev == "cuda":
            for kind in ("symmetric", "multiscale"):
                if (kind == "symmetric" and n > 200_000) or rows.left() < 30:
                    continue

                def flash_run(kind=kind):
                    kw = dict(loss="sinkhorn", p=2, blur=blur, scaling=0.5, debias=True, half_cost=True, backend=kind)
                    if kind == "multiscale":
                        kw["tol"] = 5e-3
                    loss = fsk.SamplesLoss(**kw)
                    xg = x.clone().requires_grad_(kind == "symmetric")
                    val = {}

                    def once():
                        if kind == "symmetric":
                            v = loss(xg, y)
                            torch.autograd.grad(v, [xg])
                        else:
                            with torch.no_grad():
                                v = loss(xg, y)
                        val["v"] = float(v)
                    t = median_time(once, args.reps)
                    return {"time_s": t, "value": val["v"], "rel_err": rel(val["v"])}
                rows.measure(f"flash_sinkhorn {kind} " + ("value+grad" if kind == "symmetric" else "forward only"),
                             flash_run, n=n, blur=blur, scaling=0.5)
    rows.write()
    print("engine stage done", flush=True)


if __name__ == "__main__":
    main()
