"""Pre-alignment: successive halving of the starting rotations (``PrealignConfig.keep``, default 6)
against every start run to the end and scored (``keep=None``), on the sample brains and the frog organs.

    nice -n 10 .venv/bin/python benchmarks/prealign.py [--cases brain-warp liver ...] [--n 10000] [--repeat 3]

Cases: ``brain-warp`` (fsaverage5 lh pial onto a known smooth warp of itself turned by 120
degrees: ``warp_pair(seed=2, amplitude=6 mm, angle_deg=120, translation_mm=15)``), ``brain-lr``
(lh onto the mirrored rh: no truth, a real pair), and frog organs (``benchmarks/smooth.py``'s
``organ``) each onto ``warp_pair(seed=1, amplitude=5 % of the diameter, angle_deg=120)``. Every
case runs the ``rigid`` preset (the pre-alignment stage alone) with both settings, one after
the other in one process; times are medians of ``--repeat`` runs. Columns: time_s, speedup (all
/ halving) and the same for the search over starts alone (search_s, search_speedup), scored
(starts scored by the divergence), err_mean_mm (against the known motion), diff_max_mm
/ diff_mean_mm (the two settings' maps at the source's vertices: 0 = same answer),
max_rss_gb. Writes ``benchmarks/results/prealign-<device>-<date>.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_gb, table, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ORGANS = ("liver", "kidney", "lung", "stomach", "heart")


def cases(names: list[str], n: int) -> dict:
    """name -> (source Shape, target Shape, truth (N, 3) or None)."""
    import shapeot
    from shapeot.shapes.synthetic import warp_pair

    out = {}
    lh = shapeot.load(ROOT / "sample_meshes" / "fsaverage5_lh_pial.gii").decimate(n)
    for name in names:
        if name == "brain-warp":
            pair = warp_pair(lh, seed=2, amplitude=6.0, angle_deg=120.0, translation_mm=15.0)
            out[name] = (lh, pair.target, pair.truth)
        elif name == "brain-lr":
            rh = shapeot.load(ROOT / "sample_meshes" / "fsaverage5_rh_pial.gii").decimate(n)
            out[name] = (lh, rh.replace(points=np.asarray(rh.points) * [-1.0, 1.0, 1.0]), None)
        elif name in ORGANS:
            from smooth import organ

            shape = organ(name, min(n, 5000))
            diameter = float(np.linalg.norm(np.ptp(np.asarray(shape.points), axis=0)))
            pair = warp_pair(shape, seed=1, amplitude=0.05 * diameter, angle_deg=120.0, translation_mm=15.0)
            out[name] = (shape, pair.target, pair.truth)
        else:
            raise SystemExit(f"unknown case {name!r}: brain-warp, brain-lr, {', '.join(ORGANS)}")
    return out


def run(source, target, keep, repeat: int):
    """Median time of the rigid pre-alignment, the moved source points, the starts scored."""
    import shapeot.registration.prealign as prealign
    from shapeot.registration import RegistrationConfig, register

    config = RegistrationConfig.from_preset("rigid", compute_metrics=False, prealign={"keep": keep})
    scored, times, search, reg = [], [], [], None
    real_score, real_search = prealign._Fit.score, prealign._search

    def counting(self, *a, **k):
        scored.append(1)
        return real_score(self, *a, **k)

    def timed(*a, **k):
        t0 = time.perf_counter()
        out = real_search(*a, **k)
        search.append(time.perf_counter() - t0)
        return out

    prealign._Fit.score, prealign._search = counting, timed
    try:
        for _ in range(repeat):
            scored.clear()
            t = time.perf_counter()
            reg = register(source, target, config)
            times.append(time.perf_counter() - t)
    finally:
        prealign._Fit.score, prealign._search = real_score, real_search
    return statistics.median(times), statistics.median(search), np.asarray(reg.warped.points), len(scored)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["brain-warp", "brain-lr", *ORGANS])
    ap.add_argument("--n", type=int, default=10000, help="brain vertices (organs: at most 5000)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for name, (source, target, truth) in cases(args.cases, args.n).items():
        t_all, s_all, moved_all, n_all = run(source, target, None, args.repeat)
        t_keep, s_keep, moved_keep, n_keep = run(source, target, 6, args.repeat)
        diff = np.linalg.norm(moved_all - moved_keep, axis=1)
        for setting, t, ts, moved, n_scored in (("all 24 starts", t_all, s_all, moved_all, n_all),
                                                ("halving, keep 6", t_keep, s_keep, moved_keep, n_keep)):
            row = {"case": name, "vertices": source.n_points, "setting": setting, "time_s": round(t, 3),
                   "search_s": round(ts, 3), "scored": n_scored, "max_rss_gb": round(peak_rss_gb(), 3)}
            if truth is not None:
                row["err_mean_mm"] = round(float(np.linalg.norm(moved - truth, axis=1).mean()), 4)
            if setting.startswith("halving"):
                row.update(speedup=round(t_all / t, 2), search_speedup=round(s_all / ts, 2),
                           diff_max_mm=round(float(diff.max()), 4), diff_mean_mm=round(float(diff.mean()), 4))
            rows.append(row)
            print(row, flush=True)
    cols = ["case", "vertices", "setting", "time_s", "speedup", "search_s", "search_speedup", "scored", "err_mean_mm",
            "diff_max_mm", "diff_mean_mm", "max_rss_gb"]
    print(table(rows, cols))
    print(f"wrote {write('prealign', {**machine(), 'args': vars(args)}, rows)}")


if __name__ == "__main__":
    main()
