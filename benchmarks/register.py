"""shapeot.register beside Coherent Point Drift on known warps of a real brain surface.

    .venv/bin/python benchmarks/register.py [--sizes 2000 10242 32000] [--cpd-max 2000] [--real] [--tag NAME]
    .venv/bin/python benchmarks/register.py --loop 0 1 2 [--presets nonrigid diffeomorphic] --tag native

``--loop K ...`` is the native-resolution sweep: the sample left pial surface Loop-subdivided K
times (trimesh ``subdivide_loop``: 10,242, 40,962 and 163,842 vertices, fsaverage7's density),
under the same seeded warp, the target resampled along its surface with as many vertices (no
vertex has a twin). Each registration runs end to end (metrics included) in a child process of
its own, which reports its own peak memory (max RSS), so the rows do not share a heap.

Data: the fsaverage5 left pial surface (sample_meshes/), at 2k (decimated), 10k (as shipped) and
32k vertices (subdivided, then decimated), warped by the seeded generator of
shapeot.shapes.synthetic.warp_pair: a known smooth diffeomorphism of amplitude 10 mm and a rigid
motion of 20 degrees and 10 mm. Two targets per size: the same vertices shuffled ("same"), and
the warped surface re-meshed with half the vertices ("remeshed": no vertex has a twin).

Peers: CPD (Myronenko & Song, "Point set registration: coherent point drift", IEEE TPAMI 32(12),
2010) as implemented by pycpd: rigid CPD, then deformable CPD, on the same normalised points; its
dense N x M posterior limits it to the sizes given by --cpd-max, and to the memory and time
limits --cpd-memory-gb and --cpd-time-limit: a size it is not run at, or a run stopped at the
time limit, still gets a row saying why (``skipped``, with the estimated peak memory and, when
stopped, the measured seconds per iteration).

Errors are per source vertex against the ground truth (mm); "chamfer_s" is the symmetric
point-to-surface Chamfer distance to the target. Prints a table and writes
benchmarks/results/register[-<tag>]-<device>-<date>.json (a file of the same name is replaced:
give a --tag to keep earlier results).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_gb, table, write  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_meshes"


def _brain(name: str):
    from shapeot.shapes import load

    for candidate in (f"{name}.pial.gii", f"fsaverage5_{name}_pial.gii"):
        if (SAMPLES / candidate).exists():
            return load(SAMPLES / candidate)
    raise SystemExit(f"no fsaverage5 {name} pial surface in {SAMPLES}")


def _at_size(shape, n: int):
    """The surface with about n vertices: decimated, or subdivided (midpoints) then decimated."""
    from shapeot.shapes import Shape
    from shapeot.shapes.synthetic import _subdivide  # noqa: PLC2701 - the generator's own refinement

    while shape.n_points < n:
        pts, faces = _subdivide(np.asarray(shape.points), np.asarray(shape.faces))
        shape = Shape(pts, faces, name=shape.name, units=shape.units)
    return shape.decimate(n) if shape.n_points > 1.02 * n else shape


def _pairs(shape, seed: int = 1):
    from shapeot.shapes import Shape
    from shapeot.shapes.synthetic import resample_surface, warp_pair

    pair = warp_pair(shape, seed=seed, resample=False)
    perm = np.random.default_rng(seed).permutation(shape.n_points)
    same = Shape(pair.target.points[perm], np.argsort(perm)[shape.faces], units="mm", name="same, shuffled")
    remeshed = resample_surface(pair.target, seed + 2, n_points=shape.n_points // 2)
    return {"same": same, "remeshed": remeshed}, pair.truth


def _scores(source, warped_points, target, truth, seconds) -> dict:
    from shapeot.metrics import chamfer

    err = np.linalg.norm(warped_points - truth, axis=1)
    return {"time_s": seconds, "err_mean": float(err.mean()), "err_p95": float(np.percentile(err, 95)),
            "err_max": float(err.max()),
            "chamfer_s": chamfer(source.with_points(warped_points), target, surface=True)}


def run_shapeot(source, target, truth, preset: str) -> dict:
    from shapeot.registration import RegistrationConfig, register

    cfg = RegistrationConfig.from_preset(preset, compute_metrics=False)
    t = time.perf_counter()
    reg = register(source, target, cfg)
    out = _scores(source, reg.warped.points, target, truth, time.perf_counter() - t)
    out.update({f"t_{k}": v for k, v in reg.timings.items() if k != "total"})
    if preset == "diffeomorphic":
        from shapeot.metrics import jacobian_determinants, warp_summary

        w = warp_summary(source.points, reg.warped.points, source.faces)
        det = jacobian_determinants(reg.deformation, source.points, step=1e-3 * reg.scale)
        out.update(folded=w.folded, area_ratio_min=w.area_ratio_min, area_ratio_max=w.area_ratio_max,
                   jacobian_min=float(det.min()), jacobian_max=float(det.max()))
    return out


CPD_NAME = "CPD rigid+deformable (pycpd)"


def cpd_memory_gb(m: int, n: int) -> float:
    """Estimated peak memory of pycpd 2.0 (float64) for M source and N target points, GB.

    The deformable constructor builds its M x M kernel from two tiled (M, M, 3) copies and their
    difference and square (4 x 24 M^2 bytes at once); each E-step forms an (M, N, 3) difference
    and its square before the (M, N) posterior (~8 x 8 MN bytes with P); each M-step multiplies
    np.diag(P1) by G and solves an M x M system (~6 x 8 M^2 bytes).
    """
    return max(96.0 * m * m, 64.0 * m * n + 16.0 * m * m, 48.0 * m * m + 16.0 * m * n) / 1e9


class _TimeUp(Exception):
    pass


def run_cpd(source, target, truth, beta: float = 2.0, alpha: float = 2.0, time_limit: float | None = None) -> dict:
    """Rigid then deformable CPD (pycpd defaults: beta = alpha = 2, w = 0), on points normalised
    like shapeot's (centred, RMS radius 1). Past ``time_limit`` seconds the run is stopped at
    the next iteration and the row says so (``skipped``), with the seconds per iteration."""
    from pycpd import DeformableRegistration, RigidRegistration

    y_src, x_tgt = np.asarray(source.points), np.asarray(target.points)
    c, s = y_src.mean(0), np.sqrt(((y_src - y_src.mean(0)) ** 2).sum(1).mean())
    ct = x_tgt.mean(0)
    t = time.perf_counter()
    ticks = {"rigid": [], "deformable": []}

    def watch(stage):
        def callback(**_):
            ticks[stage].append(time.perf_counter() - t)
            if time_limit is not None and ticks[stage][-1] > time_limit:
                raise _TimeUp
        return callback

    try:
        ty, _ = RigidRegistration(X=(x_tgt - ct) / s, Y=(y_src - c) / s, scale=False).register(watch("rigid"))
        t_rigid = time.perf_counter() - t
        ty, _ = DeformableRegistration(X=(x_tgt - ct) / s, Y=ty, alpha=alpha, beta=beta).register(watch("deformable"))
    except _TimeUp:
        dt = time.perf_counter() - t
        stage = "deformable" if ticks["deformable"] else "rigid"
        per = np.diff([0.0] + ticks[stage])[1:] if len(ticks[stage]) > 1 else np.array(ticks[stage])
        return {"time_s": dt, "skipped": (f"stopped at the {time_limit:.0f} s limit during {stage} CPD after "
                                          f"{len(ticks['rigid'])} rigid and {len(ticks['deformable'])} deformable "
                                          f"iterations ({float(np.median(per)):.1f} s per {stage} iteration; pycpd "
                                          f"runs up to 100 per stage unless it converges first)"),
                "cpd_rigid_iterations": len(ticks["rigid"]), "cpd_deformable_iterations": len(ticks["deformable"]),
                "cpd_s_per_iteration": float(np.median(per))}
    out = _scores(source, ty * s + ct, target, truth, time.perf_counter() - t)
    out.update(cpd_rigid_iterations=len(ticks["rigid"]), cpd_deformable_iterations=len(ticks["deformable"]),
               t_prealign=t_rigid)
    return out


def _loop_pair(k: int, folder: Path, seed: int = 1) -> Path:
    """The k-times Loop-subdivided sample lh pial and its warped, resampled target (cached .npz)."""
    import trimesh

    from shapeot.shapes import Shape
    from shapeot.shapes.synthetic import warp_pair

    path = folder / f"loop{k}-seed{seed}.npz"
    if path.exists():
        return path
    lh = _brain("lh")
    pts, faces = np.asarray(lh.points), np.asarray(lh.faces)
    for _ in range(k):
        pts, faces = trimesh.remesh.subdivide_loop(pts, faces)
    source = Shape(pts, faces, name=f"lh pial, Loop x{k}", units="mm")
    pair = warp_pair(source, seed=seed, resample=True)
    np.savez(path, sp=source.points, sf=source.faces, tp=pair.target.points, tf=pair.target.faces, truth=pair.truth)
    return path


def _child(data: str, preset: str) -> None:
    """Run one registration of a cached pair and print one JSON line (in a fresh process)."""
    import json

    from shapeot.registration import register
    from shapeot.shapes import Shape

    d = np.load(data)
    source, target = Shape(d["sp"], d["sf"], units="mm"), Shape(d["tp"], d["tf"], units="mm")
    t = time.perf_counter()
    reg = register(source, target, preset)
    seconds = time.perf_counter() - t
    row = _scores(source, reg.warped.points, target, d["truth"], seconds)
    row.update({f"t_{k}": v for k, v in reg.timings.items() if k != "total"})
    after = reg.metrics.get("after", {})
    row.update(folded=after.get("folded"), jacobian_min=after.get("jacobian_min"),
               jacobian_max=after.get("jacobian_max"),
               max_rss_gb=peak_rss_gb())
    print("ROW " + json.dumps(row), flush=True)


def loop_sweep(levels: list[int], presets: list[str]) -> list[dict]:
    """The native-resolution sweep (module docstring); one child process per registration."""
    import json
    import subprocess
    import tempfile

    folder = Path(tempfile.gettempdir()) / "shapeot-bench-loop"
    folder.mkdir(exist_ok=True)
    rows = []
    for k in levels:
        data = _loop_pair(k, folder)
        n = int(np.load(data)["sp"].shape[0])
        for preset in presets:
            out = subprocess.run([sys.executable, __file__, "--child", str(data), preset], capture_output=True,
                                 text=True)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("ROW ")]
            row = {"n": n, "target": "resampled", "method": f"shapeot {preset}", "loop": k}
            if out.returncode or not line:
                row["failed"] = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
            else:
                row.update(json.loads(line[0][4:]))
            rows.append(row)
            print(table([row], ["n", "method", "time_s", "err_mean", "err_p95", "chamfer_s", "max_rss_gb",
                                "t_prealign", "t_nonrigid", "t_metrics", "failed"]), flush=True)
    base = {r["method"]: r["time_s"] for r in rows if r.get("loop") == min(levels) and "time_s" in r}
    for r in rows:
        if r["method"] in base and "time_s" in r:
            r["time_ratio_vs_smallest"] = r["time_s"] / base[r["method"]]
    return rows


def real_pair(preset: str = "nonrigid") -> dict:
    """fsaverage5 left pial against the mirrored right pial: Chamfer and HD95 before and after."""
    from shapeot.registration import register
    from shapeot.shapes import Shape

    lh, rh = _brain("lh"), _brain("rh")
    mirrored = Shape(rh.points * np.array([-1.0, 1.0, 1.0]), rh.faces[:, ::-1].copy(), units=rh.units,
                     name="rh mirrored")
    t = time.perf_counter()
    reg = register(lh, mirrored, preset)
    b, a = reg.metrics["before"], reg.metrics["after"]
    return {"pair": "lh vs mirrored rh", "method": f"shapeot {preset}", "n": lh.n_points,
            "time_s": time.perf_counter() - t,
            "chamfer_s_before": b["chamfer_surface"], "chamfer_s_after": a["chamfer_surface"],
            "hd95_s_before": b["hd95_surface"], "hd95_s_after": a["hd95_surface"],
            "chamfer_before": b["chamfer"], "chamfer_after": a["chamfer"],
            "hd95_before": b["hd95"], "hd95_after": a["hd95"], "folded": a.get("folded")}


def _time_ratios(rows: list[dict]) -> list[dict]:
    """shapeot's time over CPD's, per size and target, from rows of the same run (same load)."""
    out = []
    for r in rows:
        if not r["method"].startswith("shapeot") or "time_s" not in r:
            continue
        cpd = [c for c in rows if c["method"] == CPD_NAME and c["n"] == r["n"] and c["target"] == r["target"]
               and not c.get("skipped") and "time_s" in c]
        if cpd:
            out.append({"n": r["n"], "target": r["target"], "method": r["method"], "time_s": r["time_s"],
                        "cpd_time_s": cpd[0]["time_s"], "time_ratio_vs_cpd": r["time_s"] / cpd[0]["time_s"]})
    return out


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 10242, 32000])
    p.add_argument("--cpd-max", type=int, default=2000, help="largest size given to CPD (dense N x M)")
    p.add_argument("--presets", nargs="+", default=["nonrigid"])
    p.add_argument("--diffeomorphic-max", type=int, default=2000)
    p.add_argument("--cpd-memory-gb", type=float, default=16.0,
                   help="skip CPD where its estimated peak memory (cpd_memory_gb) is above this")
    p.add_argument("--cpd-time-limit", type=float, default=900.0, help="stop a CPD run after this many seconds")
    p.add_argument("--real", action="store_true", help="also the lh / mirrored rh pair")
    p.add_argument("--tag", default="", help="inserted in the output's name: register-<tag>-<device>-<date>.json")
    p.add_argument("--loop", type=int, nargs="+", default=None,
                   help="native-resolution sweep instead: Loop subdivisions of the sample brain (0 1 2)")
    args = p.parse_args(argv)
    if args.loop is not None:
        rows = loop_sweep(args.loop, args.presets)
        print()
        print(table(rows, ["n", "method", "time_s", "time_ratio_vs_smallest", "err_mean", "err_p95", "err_max",
                           "chamfer_s", "max_rss_gb", "t_prealign", "t_nonrigid", "t_metrics", "folded",
                           "jacobian_min", "jacobian_max", "failed"]))
        info = machine()
        info["argv"] = argv
        print(f"wrote {write(f'register-{args.tag}' if args.tag else 'register-loop', info, rows)}")
        return None

    full = _brain("lh")
    rows = []
    for n in args.sizes:
        source = _at_size(full, n)
        targets, truth = _pairs(source)
        for kind, target in targets.items():
            methods = [(f"shapeot {pr}", lambda s, t, g, pr=pr: run_shapeot(s, t, g, pr)) for pr in args.presets]
            if n <= args.diffeomorphic_max and "diffeomorphic" not in args.presets:
                methods.append(("shapeot diffeomorphic", lambda s, t, g: run_shapeot(s, t, g, "diffeomorphic")))
            gb = cpd_memory_gb(source.n_points, target.n_points)
            if n > args.cpd_max:
                skip = f"--cpd-max {args.cpd_max} < {n} points (estimated peak memory {gb:.1f} GB)"
            elif gb > args.cpd_memory_gb:
                skip = f"estimated peak memory {gb:.1f} GB > --cpd-memory-gb {args.cpd_memory_gb:g}"
            else:
                skip = None
                methods.append((CPD_NAME, lambda s, t, g: run_cpd(s, t, g, time_limit=args.cpd_time_limit)))
            if skip is not None:
                rows.append({"n": source.n_points, "target": kind, "method": CPD_NAME, "skipped": skip,
                             "cpd_memory_gb_estimate": gb})
                print(f"{CPD_NAME} at n={source.n_points} ({kind}) skipped: {skip}", flush=True)
            for name, fn in methods:
                row = {"n": source.n_points, "target": kind, "method": name, **fn(source, target, truth)}
                if name == CPD_NAME:
                    row["cpd_memory_gb_estimate"] = gb
                rows.append(row)
                print(table([row], ["n", "target", "method", "time_s", "err_mean", "err_p95", "chamfer_s", "skipped"]),
                      flush=True)
    real = [real_pair()] if args.real else []
    info = machine()
    print()
    print(table(rows, ["n", "target", "method", "time_s", "err_mean", "err_p95", "err_max", "chamfer_s",
                       "t_prealign", "t_nonrigid", "t_finetune", "folded", "jacobian_min", "jacobian_max",
                       "area_ratio_min", "area_ratio_max"]))
    ratios = _time_ratios(rows)
    if ratios:
        print(table(ratios, ["n", "target", "method", "time_s", "cpd_time_s", "time_ratio_vs_cpd"]))
    for r in rows:
        if r.get("skipped"):
            print(f"skipped: {r['method']} at n={r['n']} ({r['target']}): {r['skipped']}")
    if real:
        print(table(real, ["pair", "method", "n", "time_s", "chamfer_s_before", "chamfer_s_after", "hd95_s_before",
                           "hd95_s_after", "folded"]))
    info["argv"] = argv
    path = write(f"register-{args.tag}" if args.tag else "register", info, rows + real + ratios)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
