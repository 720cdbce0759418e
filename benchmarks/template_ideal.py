"""The yardstick's floor for benchmarks/template.py: the template that known correspondences give.

    .venv/bin/python benchmarks/template_ideal.py kidney brain
    .venv/bin/python benchmarks/template_ideal.py kidney --subjects 6 --normal-amplitude 30 --pairs linear

For each case, make_cohort (seed 0; --subjects subjects, by default 6 of the frog kidney or liver
and 20 of the 10k brain, as in template.py; the cohort options of template.py) is made, and two
templates are built from the subjects' ground-truth positions of the reference vertices (exact
correspondences, no registration):

* ``gpa``: what shapeot.template's normalisation does with them: every subject scaled about its
  centroid to the subjects' mean RMS radius (each weighted by its own vertex areas), then rounds of rigid fits
  (Umeyama) to
  the mean and mean updates, starting from the reference (a generalised Procrustes analysis with
  exact correspondences). This is the floor of a template built by registration.
* ``similarity``: every subject brought to the reference by its own similarity fit, then
  averaged (the figure this script printed before; a fit of the subject onto the reference
  shrinks the larger subjects, so it lies above the floor when the subjects are far apart).

Both are measured with template.py's yardstick (rigid ICP, then symmetric mean point-to-surface
distance and HD95 to the true mean). What a template built by registration scores above ``gpa``
is registration error, not the generator's second-order remainder. Prints one line per case.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "templates"))


def _rms(points: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    c = w @ points / w.sum()
    return float(np.sqrt(w @ ((points - c) ** 2).sum(1) / w.sum())), c


def known_correspondence_templates(cohort, rounds: int = 6) -> dict:
    """{"gpa": (N, 3), "similarity": (N, 3)}: the templates exact correspondences give (see above)."""
    from shapeot.deform import fit_linear
    from shapeot.shapes.geometry import vertex_areas

    ref = np.asarray(cohort.reference.points)
    w = np.asarray(cohort.reference.weights, dtype=np.float64)
    faces = np.asarray(cohort.reference.faces)
    # Each subject's size with its own vertex areas, as the template measures it (tasks._size).
    sizes = [_rms(t, vertex_areas(t, faces)) for t in cohort.truths]
    radius = np.mean([r for r, _ in sizes])
    scaled = [(t - c) * (radius / r) + c for t, (r, c) in zip(cohort.truths, sizes)]
    mean = ref
    for _ in range(rounds):
        mean = np.mean([fit_linear(t, mean, w, "rigid").apply(t) for t in scaled], axis=0)
    similarity = np.mean([fit_linear(t, ref, w, "similarity").apply(t) for t in cohort.truths], axis=0)
    return {"gpa": mean, "similarity": similarity}


def add_cohort_options(p: argparse.ArgumentParser) -> None:
    """make_cohort's displacement options, shared with template.py (mm; None: make_cohort's default)."""
    p.add_argument("--amplitude", type=float, default=None,
                   help="peak of each pair's own random field, mm (make_cohort's default: 4)")
    p.add_argument("--mode-amplitude", type=float, default=None,
                   help="peak of the shared mode at score 1, mm (scores in [0.5, 1]; default 8)")
    p.add_argument("--normal-amplitude", type=float, default=None,
                   help="peak of each pair's bumps and dents along the normals, mm (default 0: none)")
    p.add_argument("--width", type=float, default=None,
                   help="kernel width of every field, mm (default: a fifth of the true mean's diameter)")
    p.add_argument("--pairs", choices=["flow", "linear"], default=None,
                   help="subjects as flows of +-u (default) or as x +- u(x) less its similarity part")


def cohort_options(args) -> dict:
    names = ("amplitude", "mode_amplitude", "normal_amplitude", "width", "pairs")
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("cases", nargs="+", help="kidney, liver (frog organs, 3,000 vertices) or brain (10k)")
    p.add_argument("--subjects", type=int, default=None, help="default: 6 for an organ, 20 for the brain")
    add_cohort_options(p)
    args = p.parse_args(argv)

    from reference import surface_distance
    from smooth import organ

    import shapeot
    from shapeot.shapes.synthetic import make_cohort

    for name in args.cases:
        brain = HERE.parent / "sample_meshes" / "fsaverage5_lh_pial.gii"
        ref = organ(name, 3000) if name != "brain" else shapeot.load(brain)
        n = args.subjects or (6 if name != "brain" else 20)
        c = make_cohort(ref, n, 0, **cohort_options(args))
        subj = np.mean([surface_distance(s, ref, 1500)[0] for s in c.subjects])
        out = []
        for kind, pts in known_correspondence_templates(c).items():
            d = surface_distance(ref.with_points(pts), ref, 1500)
            out.append(f"{kind} {d[0]:.3f} mm (HD95 {d[1]:.3f}, ratio {d[0] / subj:.3f})")
        print(f"{name} {cohort_options(args)}: subjects {subj:.3f} mm on average from the true mean; "
              f"known-correspondence templates: " + "; ".join(out), flush=True)


if __name__ == "__main__":
    main()
