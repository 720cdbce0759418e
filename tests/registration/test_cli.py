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
    np.testing.assert_allclose(disp[:, 1:], warped.points - source.points, atol=1e-4)
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
    import shapeot.cli as cli

    d, _ = pair_files
    monkeypatch.setattr(cli._Bar, "__call__", lambda self, f, m: f < 0.1)
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
