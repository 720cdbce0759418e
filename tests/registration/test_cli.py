"""The ``shapeot register`` and ``shapeot match`` commands, end to end through files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from shapeot.cli import main, read_landmarks
from shapeot.shapes import load
from shapeot.shapes.synthetic import random_rigid


@pytest.fixture(scope="module")
def pair_files(small_brain, tmp_path_factory):
    """A brain and a rigidly moved copy on disk, with landmarks (vertices and their images)."""
    d = tmp_path_factory.mktemp("cli")
    motion = random_rigid(angle_deg=15.0, translation_mm=8.0, centre=small_brain.points.mean(0), seed=7)
    small_brain.save(d / "source.ply")
    small_brain.with_points(motion.apply(small_brain.points)).save(d / "target.ply")
    idx = [0, 100, 200, 300, 400]
    np.savetxt(d / "src_lm.csv", small_brain.points[idx], delimiter=",", header="x,y,z", comments="")
    np.savetxt(d / "tgt_lm.csv", motion.apply(small_brain.points[idx]), delimiter=",", header="x,y,z", comments="")
    return d, motion


@pytest.mark.slow
def test_register_writes_every_output(pair_files, capsys):
    d, motion = pair_files
    out = d / "res" / "warped.vtp"
    rc = main(["register", str(d / "source.ply"), str(d / "target.ply"), "-o", str(out), "--preset", "rigid",
               "--landmarks", str(d / "src_lm.csv"), str(d / "tgt_lm.csv"), "--json", str(d / "res" / "s.json")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Chamfer, point-to-surface" in text and "landmark TRE" in text
    source, warped = load(d / "source.ply"), load(out)
    np.testing.assert_array_equal(warped.faces, source.faces)
    np.testing.assert_allclose(warped.points, motion.apply(source.points), atol=0.2)
    np.testing.assert_allclose(warped.point_data["displacement"], warped.points - source.points, atol=1e-4)
    disp = np.loadtxt(d / "res" / "warped_displacement.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(disp[:, 1:4], warped.points - source.points, atol=1e-4)
    corr = np.loadtxt(d / "res" / "warped_correspondences.csv", delimiter=",", skiprows=1)
    assert corr.shape == (source.n_points, 6)
    pre = np.loadtxt(d / "res" / "warped_prealign.txt")
    np.testing.assert_allclose(pre[:3, :3], motion.rotation, atol=2e-3)
    summary = json.loads((d / "res" / "s.json").read_text())
    assert summary["metrics"]["after"]["tre_mean"] < 0.2 < 5 < summary["metrics"]["before"]["tre_mean"]
    assert not [p for p in (d / "res").iterdir() if p.name.startswith(".")]  # no temporary left


def test_errors_are_one_line_and_leave_nothing(pair_files, capsys, tmp_path):
    d, _ = pair_files
    rc = main(["register", str(d / "missing.ply"), str(d / "target.ply"), "-o", str(tmp_path / "w.vtp")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("shapeot: error:") and "\n" not in err
    assert list(tmp_path.iterdir()) == []
    rc = main(["register", str(d / "source.ply"), str(d / "target.ply"), "-o", str(d / "source.ply")])
    assert rc == 2 and "inputs are never overwritten" in capsys.readouterr().err
    rc = main(["register", str(d / "source.ply"), str(d / "target.ply"), "-o", str(tmp_path / "w.xyz")])
    assert rc == 2 and list(tmp_path.iterdir()) == []


def test_cancel_leaves_nothing(pair_files, tmp_path, monkeypatch, capsys):
    import shapeot.cli.common as cli

    d, _ = pair_files
    monkeypatch.setattr(cli.Bar, "__call__", lambda self, f, m: f < 0.1)
    rc = main(["register", str(d / "source.ply"), str(d / "target.ply"), "-o", str(tmp_path / "w.vtp"),
               "--preset", "rigid"])
    assert rc == 130 and "cancelled" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_match_still_works(pair_files, tmp_path):
    d, _ = pair_files
    assert main(["match", str(d / "source.ply"), str(d / "target.ply"), "-o", str(tmp_path / "c.csv")]) == 0
    assert (tmp_path / "c.csv").read_text().startswith("source_index,target_x")


def test_read_landmarks_formats(tmp_path):
    (tmp_path / "a.csv").write_text("label,x,y,z\nA,1,2,3\nB,4,5,6\n")
    (tmp_path / "b.fcsv").write_text("# Markups fiducial file version = 4.11\n# columns = id,x,y,z,ow\n"
                                     "vtkMRMLMarkupsFiducialNode_0,1,2,3,0\nvtkMRMLMarkupsFiducialNode_1,4,5,6,0\n")
    for name in ("a.csv", "b.fcsv"):
        np.testing.assert_array_equal(read_landmarks(tmp_path / name), [[1, 2, 3], [4, 5, 6]])


@pytest.mark.slow
def test_register_writes_the_moved_landmarks(pair_files):
    d, motion = pair_files
    out = d / "lm" / "warped.vtp"
    assert main(["--quiet", "register", str(d / "source.ply"), str(d / "target.ply"), "-o", str(out), "--preset",
                 "rigid", "--landmarks", str(d / "src_lm.csv"), str(d / "tgt_lm.csv")]) == 0
    moved = read_landmarks(d / "lm" / "warped_landmarks.csv")
    np.testing.assert_allclose(moved, read_landmarks(d / "tgt_lm.csv"), atol=0.3)  # the known rigid motion


def test_config_file_print_config_and_plain_progress_lines(pair_files, tmp_path, capsys):
    d, _ = pair_files
    config = tmp_path / "reg.toml"
    config.write_text("working_points = 500\n[prealign]\nstarts = 1\niterations = 3\n"
                      "[[levels]]\nblur = 0.08\nwidth = 0.4\npoints = 300\n")
    out = tmp_path / "w.vtp"
    # --print-config prints the whole configuration and stops: nothing is registered or written
    assert main(["register", str(d / "source.ply"), str(d / "target.ply"), "-o", str(out),
                 "--config", str(config), "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert not out.exists()
    assert "[prealign]\nmodel = \"rigid\"\nstarts = 1" in printed and "working_points = 500" in printed
    assert printed.count("[[levels]]") == 1
    # the printed configuration reads back as the same configuration
    again = tmp_path / "again.toml"
    again.write_text(printed)
    import argparse

    from shapeot.cli.common import registration_config as _registration_config
    from shapeot.registration import RegistrationConfig

    ns = argparse.Namespace(config=str(again), preset=None, device=None, backend=None)
    first = _registration_config(argparse.Namespace(config=str(config), preset=None, device=None, backend=None))
    assert _registration_config(ns) == first and first.levels[0].points == 300 and first.working_points == 500
    # a partial level keeps the preset's values at its place, not zeros or the class defaults
    preset_level = RegistrationConfig.from_preset("nonrigid").levels[0]
    assert (first.levels[0].iterations, first.levels[0].normals) == (preset_level.iterations, preset_level.normals)
    assert first.prealign.refine_points == RegistrationConfig.from_preset("nonrigid").prealign.refine_points
    # stderr is not a terminal here: plain time-stamped lines, no carriage returns
    assert main(["--threads", "1", "register", str(d / "source.ply"), str(d / "target.ply"), "-o", str(out),
                 "--config", str(again)]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "% pre-alignment" in captured.err
    # an unknown field, or a value of the wrong type, is a one-line error naming it, before any work
    for text, message in (("prealign_start = 1\n", "prealign_start: unknown field"),
                          ("[prealign]\nstarts = \"one\"\n", "prealign.starts: expected a whole number; got 'one'"),
                          ("[[levels]]\n[[levels]]\nwidth = -0.1\n", "levels[1].width: must be > 0"),
                          ("compute_metrics = \"false\"\n", "compute_metrics: expected true or false")):
        config.write_text(text)
        assert main(["register", str(d / "source.ply"), str(d / "target.ply"), "-o", str(tmp_path / "w2.vtp"),
                     "--config", str(config)]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "w2.vtp").exists()


def test_version_and_quiet(capsys):
    import shapeot

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"shapeot {shapeot.__version__}"
    assert main(["--threads", "0", "backends"]) == 2


@pytest.mark.slow
def test_outputs_separate_the_pose_from_the_shape_change(pair_files, tmp_path):
    """A purely rigid pair: the whole displacement is the pre-alignment's; the non-rigid part and
    the signed normal displacement are ~0. Then a known outward push along the normals is read
    back as a positive normal displacement of that size."""
    from shapeot.registration import register

    d, motion = pair_files
    out = tmp_path / "w.vtp"
    assert main(["--quiet", "register", str(d / "source.ply"), str(d / "target.ply"), "-o", str(out), "--preset",
                 "rigid"]) == 0
    rows = np.loadtxt(tmp_path / "w_displacement.csv", delimiter=",", skiprows=1)
    warped = load(out)
    np.testing.assert_allclose(rows[:, 4:7], warped.point_data["nonrigid_displacement"], atol=1e-9)
    np.testing.assert_allclose(rows[:, 7], warped.point_data["normal_displacement"], atol=1e-9)
    assert np.abs(rows[:, 4:8]).max() < 1e-6  # rigid: no shape change at all
    np.testing.assert_allclose(warped.point_data["prealign_displacement"], rows[:, 1:4], atol=1e-9)

    import dataclasses

    import trimesh

    from shapeot.shapes import Shape
    from shapeot.shapes.geometry import vertex_normals

    reg = register(load(d / "source.ply"), load(d / "target.ply"), "rigid")
    pre = reg.prealigned_points
    pushed = reg.warped.with_points(pre + 0.5 * vertex_normals(pre, reg.source.faces))
    np.testing.assert_allclose(dataclasses.replace(reg, warped=pushed).normal_displacement, 0.5, atol=1e-9)
    # a closed surface wound inwards: "outwards" still means away from the inside
    sphere = trimesh.creation.icosphere(3, radius=20.0)
    inward = Shape(sphere.vertices, sphere.faces[:, ::-1].copy(), units="mm")
    reg = register(inward, inward, "rigid")
    grown = inward.with_points(reg.prealigned_points * 1.05)  # radius 20 -> 21 mm
    np.testing.assert_allclose(dataclasses.replace(reg, warped=grown).normal_displacement, 1.0, atol=0.01)
