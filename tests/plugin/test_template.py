"""Template from a folder (``ShapeOTLib.runs.template_from_folder``) on real MRML nodes.

The template's accuracy is tested by tests/templates; here, that the bridge puts the right
arrays on the right nodes, reports skipped files, and leaves nothing behind when cancelled.
"""
from __future__ import annotations

import numpy as np
import pytest
from vtk.util import numpy_support

from .conftest import SAMPLES


def fast_config():
    """Two coarse levels, one iteration, one starting rotation: seconds, not minutes."""
    from shapeot.registration import Level, RegistrationConfig
    from shapeot.templates import TemplateConfig

    reg = RegistrationConfig.from_preset("nonrigid", prealign=None,
                                         levels=(Level(200, 0.08, 0.4, 1), Level(400, 0.04, 0.2, 1)))
    return TemplateConfig(registration=reg, iterations=1, procrustes_starts=1, procrustes_iterations=1,
                          compute_distances=False, n_modes=2, medoid_points=100, procrustes_points=200)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three cohort subjects decimated to ~400 vertices, and a file that is not a shape."""
    from shapeot.shapes import load

    out = tmp_path_factory.mktemp("cohort")
    for i in (1, 2, 3):
        path = SAMPLES / "cohort" / f"subject_{i:02d}.gii"
        if not path.exists():
            pytest.skip(f"{path} is missing")
        load(path).decimate(400).save(out / f"subject_{i:02d}.vtk")
    (out / "notes.txt").write_text("not a shape\n")
    return out


def _array(node, name):
    array = node.GetPolyData().GetPointData().GetArray(name)
    assert array is not None, name
    return np.array(numpy_support.vtk_to_numpy(array))


def test_template_model_carries_the_population_modes(scene, folder):
    from ShapeOTLib import nodes, runs

    calls = []
    result = runs.template_from_folder(scene, folder, config=fast_config(), n_modes=2, subject_models=True,
                                       progress=lambda f, m: calls.append((f, m)) or True)
    tpl = result.template
    assert len(tpl.subjects) == 3 and [s.path.endswith("notes.txt") for s in result.folder.skipped] == [True]
    shape = nodes.shape_from_model(result.model)
    np.testing.assert_array_equal(shape.points, tpl.shape.points)
    np.testing.assert_array_equal(shape.faces, tpl.shape.faces)
    k = min(2, tpl.modes.n_modes)
    assert k >= 1
    for i in range(k):
        expected = np.sqrt(tpl.modes.variances[i]) * tpl.modes.components[i]
        np.testing.assert_allclose(_array(result.model, f"mode_{i + 1}"), expected, atol=1e-12)
        # one SD along a mode moves the surface by about that SD, RMS (components have unit
        # area-weighted RMS norm, with the areas of the mean shape rather than the template's)
        rms = np.sqrt(tpl.shape.weights @ (expected ** 2).sum(1))
        assert rms == pytest.approx(tpl.modes.standard_deviations[i], rel=0.02)
    assert result.model.GetPolyData().GetPointData().GetArray(f"mode_{k + 1}") is None
    assert len(result.subject_models) == 3
    for s, node in enumerate(result.subject_models):
        subject = nodes.shape_from_model(node)
        assert subject.n_points == tpl.shape.n_points  # the template's vertex indexing
        np.testing.assert_allclose(subject.points, tpl.registrations[s].warped.points)
        np.testing.assert_allclose(_array(node, "displacement"), subject.points - tpl.shape.points, atol=1e-12)
    fractions = [f for f, _ in calls]
    assert fractions[-1] == 1.0 and all(b >= a for a, b in zip(fractions, fractions[1:]))
    assert "notes.txt" in result.summary() and "3 shapes" in result.summary()


def test_cancelled_template_adds_nothing(scene, folder):
    from ShapeOTLib import runs

    from shapeot.core.errors import Cancelled

    count = scene.GetNumberOfNodes()
    with pytest.raises(Cancelled):
        runs.template_from_folder(scene, folder, config=fast_config(),
                                  progress=lambda f, m: f < 0.06)
    assert scene.GetNumberOfNodes() == count


def test_a_folder_without_two_shapes_is_a_clear_error(scene, tmp_path):
    from ShapeOTLib import runs

    (tmp_path / "only.txt").write_text("nothing")
    with pytest.raises(ValueError, match="at least two"):
        runs.template_from_folder(scene, tmp_path)
    assert scene.GetNumberOfNodes() == 0
