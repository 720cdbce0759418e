"""The template of the seeded synthetic cohort against its known true mean and dominant mode.

One template run (ten subjects of ~2,560 vertices, the default configuration with two
iterations and four starting rotations for the first alignment, in-process) feeds every test
of this module. Yardsticks are independent of shapeot's registration: trimesh's ICP for the
rigid alignment, point-to-surface distances to the true mean ``cohort_reference.gii``, the
generator's mode field ``mode.npy`` and its per-subject scores.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from .reference import cosine, rigid_icp, surface_distance, without_similarities

pytestmark = pytest.mark.slow  # a 10-subject template built once for the module


@pytest.fixture(scope="module")
def built(cohort):
    import shapeot
    from shapeot.templates import TemplateConfig

    calls = []
    config = TemplateConfig(iterations=2, procrustes_starts=4)
    tpl = shapeot.template(cohort, config, progress=lambda f, m: calls.append((f, m)) or True)
    return tpl, calls


@pytest.fixture(scope="module")
def distances(built, cohort, reference):
    """Symmetric point-to-surface distances to the true mean after rigid ICP (mean, HD95), mm:
    the template's, each subject's, and the resampling floor (the true mean itself resampled the
    way the generator resampled the subjects)."""
    from shapeot.shapes.synthetic import resample_surface

    tpl, _ = built
    subjects = [surface_distance(s, reference) for s in cohort]
    floor = surface_distance(resample_surface(reference, 7), reference)
    return {"template": surface_distance(tpl.shape, reference), "subjects": np.array(subjects), "floor": floor,
            "medoid": subjects[tpl.medoid]}


# The cohort was regenerated for issue 16 with subjects >= 3 mm from the true mean (3.09 mm on
# average; 0.93 mm before). On it the template misses these goals, which are kept as they were:
# measured (2026-12-02, TEMPLATE_LEVELS with normals 0.2): template 1.53 mm (HD95 4.08; 1.88 / 4.82
# with positions only), subjects 3.09 mm (HD95 8.06), medoid 2.73 mm, floor 0.24 mm; registration
# residual ("fit") 1.34 mm on average, 2.18 mm at most. The template's registrations
# (TEMPLATE_LEVELS) do not follow displacements this large (docs/templates.md). strict: the day
# they pass, the marker must go.
_GOALS_MISSED = pytest.mark.xfail(strict=True, reason="issue 16: the template misses its goals on the >= 3 mm "
                                                      "cohort (measured figures above)")


def test_template_improves_on_the_subjects_and_the_medoid(distances):
    """A guard against regressions at today's level on the >= 3 mm cohort (ratios measured
    2026-12-02: 0.50 of the subjects' mean distance, 0.56 of the medoid's, HD95 0.51 of the
    subjects'; 0.61, 0.69 and 0.60 before the template's levels matched normals); the goals are
    in test_template_is_close_to_the_true_mean."""
    t_mean, t_hd95 = distances["template"]
    assert t_mean <= 0.6 * distances["subjects"][:, 0].mean(), distances
    assert t_mean <= 0.67 * distances["medoid"][0], distances
    assert t_hd95 <= 0.6 * distances["subjects"][:, 1].mean(), distances


@_GOALS_MISSED
def test_template_is_close_to_the_true_mean(distances):
    t_mean, t_hd95 = distances["template"]
    s_mean = distances["subjects"][:, 0].mean()
    floor = distances["floor"][0]
    # Measured on the first cohort (2026-11-28): template 0.32 mm, subjects 0.93 mm on average,
    # floor 0.23 mm; on today's (>= 3 mm) cohort: see _GOALS_MISSED.
    assert t_mean <= 1.0, distances
    assert t_mean <= 0.5 * s_mean, distances
    assert t_mean <= 0.6 * distances["medoid"][0], distances  # the iterations beat the starting medoid
    # The 25 % goal, above the floor that any resampled copy of the true mean has:
    assert (t_mean - floor) <= 0.25 * (s_mean - floor), distances
    assert t_hd95 <= 0.6 * distances["subjects"][:, 1].mean(), distances


def test_fixed_point_iterations(built):
    tpl, calls = built
    its = [h for h in tpl.history if h.stage == "template"]
    gpa = [h for h in tpl.history if h.stage == "procrustes"]
    assert len(its) == 2 and gpa
    # The barycenter update contracts (measured: 2.46 then 0.43 mm along the normals).
    assert its[1].value < 0.3 * its[0].value and its[0].unit == "mm"
    assert its[1].extra["move_rms_mm"] < 0.5 * its[0].extra["move_rms_mm"]
    assert its[0].value > 0.5  # the medoid was not already the mean
    assert tpl.converged == (its[-1].value < tpl.config.tolerance_mm)
    # Progress: increasing fractions in [0, 1], per subject and iteration.
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and all(np.diff(fractions) >= -1e-12)
    assert any("iteration 2/2" in m and "subject_07.gii done" in m for _, m in calls)


def test_dense_correspondences(built, cohort):
    tpl, _ = built
    n = tpl.shape.n_points
    assert tpl.shape.faces is not None and len(tpl.registrations) == len(cohort) == len(tpl.names)
    for s, reg in enumerate(tpl.registrations):
        assert reg.warped.n_points == n
        np.testing.assert_array_equal(reg.warped.faces, tpl.shape.faces)
        assert reg.target.name == cohort[s].name and reg.source is tpl.registrations[0].source
    pos = tpl.corresponded
    assert pos.shape == (len(cohort), n, 3)
    np.testing.assert_allclose(tpl.mean, np.tensordot(tpl.weights, pos, 1), atol=1e-9)
    # The corresponded subject is closer to its (aligned) subject than the template is.
    assert (tpl.distances["surface"] > tpl.distances["fit"]).all()


@_GOALS_MISSED
def test_corresponded_subjects_lie_on_the_subjects(built):
    """Each corresponded subject lies on its (aligned) subject: the registration's residual."""
    tpl, _ = built
    assert tpl.distances["fit"].max() < 0.6 and tpl.distances["fit"].mean() < 0.45


def test_alignments_remove_the_rigid_motions(built, cohort, reference):
    """Subjects in the template frame are closer to each other than in their own coordinates."""
    from shapeot.templates.tasks import aligned

    tpl, _ = built
    own = np.array([np.asarray(s.weights) @ np.asarray(s.points) for s in cohort])
    framed = np.array([np.asarray(s.weights) @ np.asarray(aligned(s, m).points)
                       for s, m in zip(cohort, tpl.alignments)])
    assert np.ptp(framed, axis=0).max() < 0.5 * np.ptp(own, axis=0).max()
    for m in tpl.alignments:  # similarities: rotation times a scale close to 1
        scale = np.cbrt(np.linalg.det(m[:3, :3]))
        np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, scale ** 2 * np.eye(3), atol=1e-9)
        assert abs(scale - 1) < 0.03


def test_first_mode_is_the_generators(built, reference, generator):
    """PC 1 against the generator's dominant mode: its direction (modulo the similarities that
    the Procrustes alignment removes) and the subjects' scores along it."""
    from scipy.spatial import cKDTree

    tpl, _ = built
    mode, scores = generator
    m = rigid_icp(tpl.shape, reference)  # template frame -> reference frame
    idx = cKDTree(np.asarray(reference.points)).query(np.asarray(tpl.shape.points) @ m[:3, :3].T + m[:3, 3])[1]
    field = mode[idx] @ m[:3, :3]  # the mode at the template's vertices, rotated into the template frame
    areas = np.asarray(tpl.shape.weights)
    direction = without_similarities(field, np.asarray(tpl.shape.points), areas)
    pc = tpl.modes.components
    # Measured: 0.696 (ground-truth correspondences + exact GPA give 0.98); modes 2 and 3: 0.06, 0.12.
    assert all(cosine(pc[0], direction, areas) > 2 * cosine(pc[k], direction, areas) for k in range(1, 3))
    r = np.corrcoef(tpl.modes.scores[:, 0], scores)[0, 1]
    assert abs(r) > 0.9, r  # measured 0.987
    assert tpl.modes.explained_variance_ratio[0] > 0.4  # measured 0.58


def test_first_mode_direction_goal(built, reference, generator):
    """PC 1's direction within cosine 0.6 of the generator's mode (modulo similarities); measured
    0.696 (0.595 before the template's levels matched normals)."""
    from scipy.spatial import cKDTree

    tpl, _ = built
    mode, _ = generator
    m = rigid_icp(tpl.shape, reference)
    idx = cKDTree(np.asarray(reference.points)).query(np.asarray(tpl.shape.points) @ m[:3, :3].T + m[:3, 3])[1]
    areas = np.asarray(tpl.shape.weights)
    direction = without_similarities(mode[idx] @ m[:3, :3], np.asarray(tpl.shape.points), areas)
    assert cosine(tpl.modes.components[0], direction, areas) > 0.6


def test_modes_are_orthonormal_and_summary_is_json(built):
    tpl, _ = built
    areas = np.asarray(tpl.registrations[0].source.weights)
    areas = areas / areas.sum()
    pc = tpl.modes.components
    gram = np.einsum("knd,lnd,n->kl", pc, pc, areas)
    np.testing.assert_allclose(gram, np.eye(len(pc)), atol=1e-8)
    assert np.all(np.diff(tpl.modes.variances) <= 0)
    summary = json.loads(json.dumps(tpl.summary(), default=float))
    assert summary["n_subjects"] == 10 and summary["medoid"] == tpl.names[tpl.medoid]
    assert {"deformation_rms_mm", "surface_mm", "fit_mm"} <= set(summary["subjects"][0])
