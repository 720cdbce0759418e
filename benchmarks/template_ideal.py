"""The yardstick's floor for benchmarks/template.py: the template that known correspondences give.

    .venv/bin/python benchmarks/template_ideal.py kidney brain

For each case, make_cohort (seed 0; 6 subjects of the frog kidney, 20 of the 10k brain, as in
template.py) is made, each subject's ground-truth positions of the reference vertices are
brought to the reference frame by a similarity fit on those known correspondences, and their
mean (a one-step generalised Procrustes analysis with exact correspondences) is measured with
template.py's yardstick (rigid ICP, then symmetric mean point-to-surface distance and HD95 to
the true mean). What a template built by registration scores above this is registration error,
not the generator's second-order bias. Prints one line per case.
"""
import sys, numpy as np
sys.path.insert(0, "benchmarks"); sys.path.insert(0, "tests/templates")
from smooth import organ
import shapeot
from shapeot.shapes.synthetic import make_cohort
from shapeot.deform import fit_linear
from reference import surface_distance
for name in sys.argv[1:]:
    ref = organ(name, 3000) if name != "brain" else shapeot.load("sample_meshes/fsaverage5_lh_pial.gii")
    S = 6 if name != "brain" else 20
    c = make_cohort(ref, S, 0)
    P = np.asarray(ref.points); w = np.asarray(ref.weights)
    aligned = []
    for t in c.truths:
        m = fit_linear(t, P, w, "similarity")  # subject -> reference frame, on the known correspondences
        aligned.append(m.apply(t))
    mean = ref.with_points(np.mean(aligned, 0))
    d = surface_distance(mean, ref, 1500)
    subj = np.mean([surface_distance(s, ref, 1500)[0] for s in c.subjects])
    print(f"{name}: known-correspondence template {d[0]:.3f} mm (HD95 {d[1]:.3f}) from the true mean; "
          f"subjects {subj:.3f} mm on average")
