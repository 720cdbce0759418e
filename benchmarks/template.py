"""shapeot.template on a synthetic cohort of real brain surfaces, in-process and on a Dask LocalCluster.

    .venv/bin/python benchmarks/template.py [--subjects 20] [--points 10242] [--workers 2]
                                            [--executors in-process local] [--threads 1]
    .venv/bin/python benchmarks/template.py --subdivide 1 --executors local --tag 41k   # native density
    .venv/bin/python benchmarks/template.py --organ kidney --subjects 6 --executors in-process \
        --normal-amplitude 32 --pairs linear --tag kidney-3mm      # a smooth organ, subjects >= 3 mm away

Data: the fsaverage5 left pial surface (sample_meshes/, 10,242 vertices; decimated when
--points is smaller; Loop-subdivided --subdivide times, trimesh ``subdivide_loop``: 40,962
vertices at 1) is the true mean; shapeot.shapes.synthetic.make_cohort (seed 0) warps it
into --subjects subjects (pairs of opposite random flows of 4 mm plus a shared mode of 4-8 mm,
rigid motions of 4 degrees / 4 mm), each resampled along its surface (no vertex keeps its twin).
--amplitude, --mode-amplitude, --normal-amplitude (bumps and dents along the normals) and --pairs
(flow, or linear: x +- u(x), whose mean is exactly the true mean) change the cohort (mm; see
make_cohort): its subjects are ~0.8-1 mm from the true mean by default, because the default
warps mostly slide along the surface, which a surface distance does not see.

For each executor (the default TemplateConfig, the same for both): wall time and stage times;
peak resident memory of this process above its level at the start, and of every Dask worker
process (VmHWM); the mean time of one registration where it ran (in this process or in a
worker: on a shared machine the workers' share of the cores shows here); and the template's accuracy against the
true mean, measured independently
of shapeot's registration: rigid ICP (trimesh, from the identity) then the symmetric mean
point-to-surface distance and HD95 (mm), beside the same for every subject and for the true mean
resampled like the subjects (the floor of this yardstick), and for the template that exact
correspondences give (ideal_mm: benchmarks/template_ideal.py's generalised Procrustes analysis of
the ground truths; what the template scores above it is registration error). PC 1 is compared with the generator's
mode (cosine after projecting out the similarities, and the correlation of the subjects' scores
with the generator's). Prints a table and writes benchmarks/results/template-<device>-<date>.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PeakRSS, machine, table, write  # noqa: E402

# The tests' independent yardsticks (trimesh ICP, surface distances, the Procrustes projection).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "templates"))
from reference import cosine, rigid_icp, surface_distance, without_similarities  # noqa: E402
from template_ideal import add_cohort_options, cohort_options, known_correspondence_templates  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_meshes"
ICP_POINTS = 1500  # vertices ICP aligns on, for the 10k-vertex surfaces here


def _mode_agreement(tpl, reference, mode, scores) -> tuple[float, float]:
    from scipy.spatial import cKDTree

    m = rigid_icp(tpl.shape, reference, n_points=ICP_POINTS)
    idx = cKDTree(np.asarray(reference.points)).query(np.asarray(tpl.shape.points) @ m[:3, :3].T + m[:3, 3])[1]
    a = np.asarray(tpl.shape.weights)
    d = without_similarities(mode[idx] @ m[:3, :3], np.asarray(tpl.shape.points), a)
    cos = cosine(tpl.modes.components[0], d, a)
    return float(cos), float(abs(np.corrcoef(tpl.modes.scores[:, 0], scores)[0, 1]))


def _worker_peaks(client) -> list[float]:
    """Peak resident memory (MB) of every worker process: VmHWM of its own address space.

    Not ru_maxrss: a process started by fork + exec inherits its parent's high-water mark in
    ru_maxrss (the nannies run in this process, which may be large by then)."""
    def peak_mb() -> float:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
        return float("nan")

    return sorted(client.run(peak_mb).values())


def run(executor: str, subjects, config, workers: int) -> tuple[dict, object]:
    import shapeot

    row: dict = {"executor": executor}
    if executor == "in-process":
        with PeakRSS() as mem:
            t = time.perf_counter()
            tpl = shapeot.template(subjects, config)
            row["wall_s"] = time.perf_counter() - t
        row["peak_mb"] = mem.peak / 2**20
        row["worker_peak_mb"] = None
    else:
        from distributed import Client, LocalCluster

        t = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
        row["startup_s"] = time.perf_counter() - t
        try:
            with PeakRSS() as mem:
                t = time.perf_counter()
                tpl = shapeot.template(subjects, config, executor=client)
                row["wall_s"] = time.perf_counter() - t
            row["peak_mb"] = mem.peak / 2**20
            peaks = _worker_peaks(client)
            row["worker_peak_mb"] = max(peaks)
            row["worker_peaks_mb"] = [round(p, 1) for p in peaks]
        finally:
            client.close()
            cluster.close()
    its = [h for h in tpl.history if h.stage == "template"]
    row.update({f"t_{k}": v for k, v in tpl.timings.items() if k != "total"})
    # Seconds of one registration where it ran (in this process or in a worker): CPU contention shows here.
    row["t_register_mean_s"] = float(np.mean([r.timings["total"] for r in tpl.registrations]))
    row.update(iterations=len(its), converged=tpl.converged,
               moves_normal_mm=[round(h.value, 4) for h in its],
               fit_mm=float(np.mean(tpl.distances["fit"])) if "fit" in tpl.distances else None)
    return row, tpl


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--subjects", type=int, default=20)
    p.add_argument("--points", type=int, default=10242, help="vertices of the true mean (decimated if < 10242)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="LocalCluster worker processes")
    p.add_argument("--executors", nargs="+", default=["in-process", "local"], choices=["in-process", "local"])
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads in this process (1: on a shared 2-core machine more threads spin "
                        "against the neighbours; the workers get 1 each from Dask)")
    p.add_argument("--iterations", type=int, default=None, help="override TemplateConfig.iterations")
    p.add_argument("--procrustes-starts", type=int, default=None,
                   help="override TemplateConfig.procrustes_starts (24: any orientation; the synthetic subjects "
                        "are within 8 degrees of each other, so 1 is a fair prior)")
    p.add_argument("--normals", type=float, default=None,
                   help="normals weight of the template's registration levels (TEMPLATE_LEVELS and "
                        "the nonrigid preset's own levels 0.2)")
    p.add_argument("--note", default="", help="added to the JSON (e.g. the machine's state)")
    p.add_argument("--subdivide", type=int, default=0,
                   help="Loop-subdivide the true mean this many times (1: 40,962 vertices, a native density)")
    p.add_argument("--tag", default="", help="added to the JSON's name")
    p.add_argument("--organ", default=None,
                   help="a frog organ of benchmarks/smooth.py (e.g. kidney) as the true mean instead of the brain: "
                        "smooth anatomy, no folds to pin correspondences")
    add_cohort_options(p)
    args = p.parse_args(argv)

    import torch

    import shapeot
    from shapeot.shapes.synthetic import make_cohort, resample_surface
    from shapeot.templates import TemplateConfig

    torch.set_num_threads(args.threads)
    if args.organ:
        from smooth import organ

        full = organ(args.organ, 3000)
    else:
        full = shapeot.load(SAMPLES / "fsaverage5_lh_pial.gii")
    reference = full if args.points >= full.n_points else full.decimate(args.points)
    if args.subdivide:
        import trimesh

        pts, faces = np.asarray(reference.points), np.asarray(reference.faces)
        for _ in range(args.subdivide):
            pts, faces = trimesh.remesh.subdivide_loop(pts, faces)
        reference = shapeot.Shape(pts, faces, units="mm", name=f"lh pial x{args.subdivide}")
    t = time.perf_counter()
    cohort = make_cohort(reference, args.subjects, 0, **cohort_options(args))
    t_data = time.perf_counter() - t
    print(f"cohort: {args.subjects} subjects of ~{cohort.subjects[0].n_points} vertices in {t_data:.1f} s", flush=True)
    overrides = {k: v for k, v in (("iterations", args.iterations), ("procrustes_starts", args.procrustes_starts))
                 if v is not None}
    config = TemplateConfig(**overrides)
    if args.normals is not None:
        import dataclasses

        reg = config.registration_config()
        config = config.replace(registration=reg.replace(
            levels=tuple(dataclasses.replace(lv, normals=args.normals) for lv in reg.levels)))

    subject_d = np.array([surface_distance(s, reference, ICP_POINTS) for s in cohort.subjects])
    floor = surface_distance(resample_surface(reference, 12345), reference, ICP_POINTS)
    ideal = surface_distance(reference.with_points(known_correspondence_templates(cohort)["gpa"]), reference,
                             ICP_POINTS)
    print(f"subjects {subject_d[:, 0].mean():.3f} mm from the true mean (min {subject_d[:, 0].min():.3f}); "
          f"exact correspondences give a template {ideal[0]:.3f} mm from it", flush=True)
    rows, results = [], {}
    load_before = os.getloadavg()
    for ex in args.executors:
        row, tpl = run(ex, cohort.subjects, config, args.workers)
        d = surface_distance(tpl.shape, reference, ICP_POINTS)
        cos, r = _mode_agreement(tpl, reference, cohort.mode, cohort.mode_scores)
        row.update(n_subjects=args.subjects, n_points=tpl.shape.n_points, template_mm=d[0], template_hd95_mm=d[1],
                   subjects_mm=float(subject_d[:, 0].mean()), subjects_hd95_mm=float(subject_d[:, 1].mean()),
                   subjects_min_mm=float(subject_d[:, 0].min()),
                   floor_mm=floor[0], ideal_mm=ideal[0], ideal_hd95_mm=ideal[1],
                   medoid_mm=float(subject_d[tpl.medoid, 0]),
                   ratio=d[0] / subject_d[:, 0].mean(),
                   ratio_above_floor=(d[0] - floor[0]) / (subject_d[:, 0].mean() - floor[0]),
                   pc1_cosine=cos, pc1_score_corr=r)
        rows.append(row)
        results[ex] = tpl
        print(table([row], ["executor", "wall_s", "t_procrustes", "t_iterations", "t_statistics", "iterations",
                            "peak_mb", "worker_peak_mb", "template_mm", "subjects_mm"]), flush=True)
    if len(results) == 2:
        a, b = results.values()
        diff = float(np.abs(a.shape.points - b.shape.points).max())
        for row in rows:
            row["max_template_difference_mm"] = diff
    info = machine()
    info.update(true_mean=reference.name, true_mean_points=reference.n_points, cohort=cohort.parameters,
                cohort_seconds=t_data, load_average_before=load_before, load_average_after=os.getloadavg(),
                config=config.to_dict(),
                note=("Measured on the project's shared 2-core CPU machine while other jobs (helpers' test suites) "
                      "ran: absolute times are pessimistic and noisy; compare rows of one run. " + args.note).strip())
    print()
    cols = ["executor", "n_subjects", "n_points", "wall_s", "startup_s", "t_procrustes", "t_iterations",
            "t_statistics", "t_register_mean_s", "iterations", "moves_normal_mm", "converged", "fit_mm", "peak_mb",
            "worker_peak_mb",
            "template_mm", "template_hd95_mm",
            "subjects_mm", "subjects_min_mm", "floor_mm", "ideal_mm", "medoid_mm", "ratio", "ratio_above_floor",
            "pc1_cosine", "pc1_score_corr",
            "max_template_difference_mm"]
    print(table(rows, cols))
    path = write("template" + (f"-{args.tag}" if args.tag else ""), info, rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
