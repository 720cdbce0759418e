"""Outputs: full precision, float32 warnings, exclusive creation, all-or-nothing commits, umask.

Through :class:`shapeot.core.outputs.OutputSet` directly and through its users:
``Shape.save``, ``Correspondences.to_csv`` and ``write_registration``.
"""
from __future__ import annotations

import os
import signal
import stat
import warnings

import numpy as np
import pytest

import shapeot.shapes as shapes
from shapeot.core.outputs import InterruptedAfterCommit, OutputSet

from .conftest import icosphere


def test_exclusive_unless_overwrite(ico, tmp_path):
    path = tmp_path / "a.ply"
    ico.save(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"a.ply exists; pass --overwrite \(overwrite=True\) to replace it"):
        ico.with_points(ico.points + 1).save(path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["a.ply"]
    ico.with_points(ico.points + 1).save(path, overwrite=True)
    np.testing.assert_allclose(shapes.load(path).points, ico.points + 1)
    assert sorted(os.listdir(tmp_path)) == ["a.ply"]


def test_a_file_that_appears_during_the_run_is_kept_and_nothing_is_written(tmp_path):
    a, b, c = (tmp_path / n for n in ("a.txt", "b.txt", "c.txt"))
    with OutputSet() as out:
        for p in (a, b, c):
            out.add(p)  # all three checked: none exists yet
        for p in (a, b, c):
            out.stage(p).write_text("new " + p.name)
        c.write_text("someone else's")  # another run got there first
        with pytest.raises(FileExistsError, match=r"c.txt appeared while shapeot was running \(another run\?\)"):
            out.commit()
    assert c.read_text() == "someone else's"
    assert sorted(os.listdir(tmp_path)) == ["c.txt"]  # a and b were rolled back, no staging folder left


def test_two_runs_cannot_both_succeed(tmp_path):
    path = tmp_path / "r.csv"
    first, second = OutputSet(), OutputSet()
    first.stage(path).write_text("first")
    second.stage(path).write_text("second")
    first.commit()
    with pytest.raises(FileExistsError, match="appeared while shapeot was running"):
        second.commit()
    second.__exit__(None, None, None)
    assert path.read_text() == "first" and os.listdir(tmp_path) == ["r.csv"]


def test_overwrite_replaces_only_its_files_and_restores_them_on_failure(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    b.write_text("old b")
    (tmp_path / "unrelated.txt").write_text("keep me")
    with OutputSet(overwrite=True) as out:
        out.stage(a).write_text("new a")
        out.add(b)  # declared, never written: a writer bug
        with pytest.raises(ValueError, match="was declared but never written"):
            out.commit()
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    with OutputSet(overwrite=True) as out:
        out.stage(a).write_text("new a")
        out.commit()
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt", "unrelated.txt"]
    assert (a.read_text(), b.read_text(), (tmp_path / "unrelated.txt").read_text()) == ("new a", "old b", "keep me")


def test_sigint_during_the_commit_cannot_split_it(tmp_path, monkeypatch):
    paths = [tmp_path / f"f{i}.txt" for i in range(5)]
    real_link = os.link
    calls = []

    def link_and_interrupt(src, dst):
        real_link(src, dst)
        calls.append(dst)
        if len(calls) == 3:  # Ctrl-C after the third of five files
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "link", link_and_interrupt)
    with OutputSet() as out:
        for p in paths:
            out.stage(p).write_text(p.name)
        with pytest.raises(InterruptedAfterCommit):
            out.commit()
    assert sorted(os.listdir(tmp_path)) == [p.name for p in paths]  # all five, nothing hidden
    assert all(p.read_text() == p.name for p in paths)


def test_interrupt_before_the_commit_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with OutputSet() as out:
            out.stage(tmp_path / "x.txt").write_text("x")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_checks_before_the_work(tmp_path):
    (tmp_path / "in.ply").write_text("x")
    with pytest.raises(ValueError, match="is one of the inputs; choose another path"):
        OutputSet(overwrite=True, inputs=[tmp_path / "in.ply"]).add(tmp_path / "in.ply")
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        OutputSet().add(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file, so the folder"):
        OutputSet().add(tmp_path / "file" / "sub" / "out.csv")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): no read-only folder to test")
        with pytest.raises(PermissionError, match="the folder is not writable"):
            OutputSet().add(ro / "out.csv")
    finally:
        ro.chmod(0o755)


def test_permissions_follow_the_umask(ico, tmp_path):
    from shapeot.matching import Correspondences

    old = os.umask(0o027)
    try:
        ico.save(tmp_path / "m.vtp")
        corr = Correspondences(np.zeros((3, 3)), np.arange(3), np.full(3, 1 / 3), np.zeros((3, 3)), None)
        corr.to_csv(tmp_path / "c.csv")
    finally:
        os.umask(old)
    for name in ("m.vtp", "c.csv"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o640, name


def test_csv_keeps_full_precision(tmp_path):
    from shapeot.matching import Correspondences

    pts = np.array([[1e-6, -2.5e-7, 3.0], [1e9 + 0.125, 0.1, 1 / 3]])
    corr = Correspondences(pts, np.array([0, 1]), np.array([1e-12, 0.5]), pts, None)
    path = corr.to_csv(tmp_path / "c.csv")
    rows = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(rows[:, 1:4], pts)  # exact: not 0.000000
    np.testing.assert_array_equal(rows[:, 5], [1e-12, 0.5])
    with pytest.raises(ValueError, match=r"x.xyz: correspondences are written as CSV; give a file name ending in .csv"):
        corr.to_csv(tmp_path / "x.xyz")
    assert sorted(os.listdir(tmp_path)) == ["c.csv"]


@pytest.mark.parametrize("name", ["far.gii", "far.stl"])
def test_float32_formats_warn_when_they_lose_precision(tmp_path, name):
    far = icosphere(3, radius=10.0)
    far = far.with_points(far.points + 1e9)  # 1e9 mm from the origin: float32 keeps ~64 mm steps
    with pytest.warns(shapes.PrecisionWarning, match=r"stores float32 coordinates, which moves vertices by up to"):
        far.save(tmp_path / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        icosphere().save(tmp_path / ("near" + name[3:]))  # near the origin: no warning
        far.save(tmp_path / "far.vtp")  # float64: no warning
    np.testing.assert_array_equal(shapes.load(tmp_path / "far.vtp").points, far.points)


def test_a_vtp_output_without_vtk_is_refused_before_the_work(tmp_path, monkeypatch):
    """A core install (no VTK) learns that .vtp needs VTK when the outputs are checked, not after
    a registration; .vtk and .ply outputs need no VTK and pass."""
    import sys

    from shapeot.registration.write import check_registration_outputs
    from shapeot.shapes.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "vtkmodules", None)  # `from vtkmodules import ...` now fails
    with pytest.raises(MissingDependencyError, match=r"w\.vtp.*pip install"):
        check_registration_outputs(tmp_path / "w.vtp")
    check_registration_outputs(tmp_path / "w.ply")
    check_registration_outputs(tmp_path / "w.vtk")
    assert list(tmp_path.iterdir()) == []  # checking writes nothing
