"""The Python API: paths or Shapes at the verbs, units never mixed, strict JSON, clear argument errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

import shapeot
from shapeot.shapes import Shape, as_shape

from .conftest import icosphere


def test_as_shape(ico, tmp_path):
    assert as_shape(ico) is ico
    ico.save(tmp_path / "a.vtp")
    loaded = as_shape(tmp_path / "a.vtp")
    assert isinstance(loaded, Shape) and loaded.n_points == ico.n_points
    assert as_shape(str(tmp_path / "a.vtp")).n_points == ico.n_points
    with pytest.raises(TypeError, match=r"source must be a shapeot.Shape or the path of a mesh or label-map file; "
                                        r"got ndarray"):
        as_shape(np.zeros((3, 3)), "source")
    with pytest.raises(FileNotFoundError, match="no such file"):
        as_shape(tmp_path / "missing.vtp")


def test_match_takes_paths_and_refuses_other_things(ico_files):
    src, tgt = ico_files
    corr = shapeot.match(src, str(tgt))
    assert corr.target_points.shape == (162, 3)
    with pytest.raises(TypeError, match="target must be a shapeot.Shape or the path"):
        shapeot.match(src, [1, 2, 3])


def test_register_takes_paths(ico_files):
    reg = shapeot.register(*ico_files, "rigid")
    assert reg.warped.n_points == 162


def test_mixed_units_are_refused_everywhere(ico):
    metres = ico.to_units("m")
    with pytest.raises(ValueError,
                       match=r"source is in m and target in mm; convert one first \(shape.to_units\('mm'\)"):
        shapeot.match(metres, ico)
    with pytest.raises(ValueError, match="source is in m and target in mm"):
        shapeot.register(metres, ico, "rigid")
    from shapeot.templates import TemplateInputError

    with pytest.raises(TemplateInputError, match="the shapes are in different units"):
        shapeot.template([ico, icosphere(seed=3).to_units("m")])
    # once converted, it runs
    assert shapeot.match(metres.to_units("mm"), ico).target_points.shape == (42, 3)


def test_a_metre_file_against_a_millimetre_file(tmp_path):
    """The issue's case: a brain in metres and one in mm, both in formats without units."""
    icosphere(2, radius=0.07).replace(units="m").save(tmp_path / "metres.ply")
    icosphere(2, radius=70.0, seed=4).save(tmp_path / "mm.ply")
    with pytest.warns(shapeot.shapes.UnitsWarning, match="taken to be in metres"):
        metres = shapeot.load(tmp_path / "metres.ply")
    mm = shapeot.load(tmp_path / "mm.ply")
    with pytest.raises(ValueError, match="source is in m and target in mm"):
        shapeot.match(metres, mm)


@pytest.mark.parametrize("field,value,fragment", [
    ("iterations", float("nan"), "iterations: must be a whole number; got nan"),
    ("iterations", 2.5, "iterations: must be a whole number; got 2.5"),
    ("iterations", 10**12, "iterations: must be between 1 and 1,000; got 1000000000000"),
    ("smoothing", -1.0, "smoothing: must be >= 0"),
    ("smoothing", float("nan"), "smoothing: must be a finite number; got nan"),
    ("tolerance_mm", float("nan"), "tolerance_mm: must be a finite number; got nan"),
    ("n_modes", True, "n_modes: must be a whole number; got True"),
    ("compute_distances", "no", "compute_distances: must be true or false; got 'no'"),
])
def test_template_config_refuses_bad_numbers(field, value, fragment):
    with pytest.raises(ValueError) as info:
        shapeot.TemplateConfig(**{field: value})
    assert fragment in str(info.value)


def test_load_folder_with_units(tmp_path):
    from shapeot.templates import load_folder

    icosphere(radius=0.01).save(tmp_path / "a.vtp")  # .vtp written by shapeot: units "mm" stated in the file
    icosphere(radius=0.01, seed=2).save(tmp_path / "b.ply")  # no units in the file, 0.03 across: inferred as m
    with pytest.warns(shapeot.shapes.UnitsWarning, match="b.ply"):
        loaded = load_folder(tmp_path)
    assert [s.units for s in loaded] == ["mm", "m"]
    loaded = load_folder(tmp_path, units="mm")
    assert [s.units for s in loaded] == ["mm", "mm"]
    with pytest.warns(shapeot.shapes.UnitsWarning):
        converted = load_folder(tmp_path, to_units="mm")
    assert [s.units for s in converted] == ["mm", "mm"]
    np.testing.assert_allclose(np.ptp(converted[1].points, axis=0), np.ptp(loaded[1].points, axis=0) * 1000)


def test_registration_outputs_are_strict_json_and_exclusive(ico_files, tmp_path):
    from shapeot.registration.write import write_registration

    real = shapeot.register(shapeot.load(ico_files[0]), shapeot.load(ico_files[1]), "rigid")

    class WithNaN:  # the registration, with a NaN in its summary (as NaN landmarks once gave)
        def __getattr__(self, name):
            return getattr(real, name)

        def summary(self):
            s = real.summary()
            s["metrics"]["after"]["tre_mean"] = float("nan")
            return s

    reg = WithNaN()
    out = tmp_path / "res" / "w.vtp"
    written = write_registration(reg, out, summary=tmp_path / "res" / "s.json")
    assert [p.name for p in written] == ["w.vtp", "w_displacement.csv", "w_correspondences.csv", "w_prealign.txt",
                                         "s.json"]
    text = (tmp_path / "res" / "s.json").read_text()
    assert "NaN" not in text and json.loads(text)["metrics"]["after"]["tre_mean"] is None
    disp = np.loadtxt(tmp_path / "res" / "w_displacement.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(disp[:, 1:4], reg.displacement)  # full precision: exact
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "res" / "w_prealign.txt"), reg.prealign)
    before = {p.name: p.read_bytes() for p in (tmp_path / "res").iterdir()}
    with pytest.raises(FileExistsError, match="w.vtp exists; pass --overwrite"):
        write_registration(reg, out, summary=tmp_path / "res" / "s.json")
    assert {p.name: p.read_bytes() for p in (tmp_path / "res").iterdir()} == before
    with pytest.raises(ValueError, match="is one of the inputs"):
        write_registration(reg, ico_files[0], overwrite=True)
