"""The command line: one-line errors (exit 2), checks before the work, nothing written or replaced.

In-process through ``shapeot.cli.main`` (fast), and a few through a subprocess to check the real
exit status and that no traceback reaches the terminal.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from .conftest import icosphere


def one_line_error(rc, err, fragment):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shapeot: error: "), err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_match_output_must_be_csv(cli, ico_files, tmp_path, tree):
    before = tree(tmp_path)
    one_line_error(*cli("match", *ico_files, "-o", tmp_path / "x.xyz")[::2],
                   "x.xyz: correspondences are written as CSV; give a file name ending in .csv")
    assert tree(tmp_path) == before


def test_match_never_replaces_without_overwrite(cli, ico_files, tmp_path):
    out = tmp_path / "c.csv"
    rc, printed, _ = cli("match", *ico_files, "-o", out)
    assert rc == 0 and "wrote 162 correspondences" in printed
    before = out.read_bytes()
    rc, _, err = cli("match", *ico_files, "-o", out, "--blur", "3")
    one_line_error(rc, err, "c.csv exists; pass --overwrite")
    assert out.read_bytes() == before
    assert cli("match", *ico_files, "-o", out, "--blur", "3", "--overwrite")[0] == 0
    assert out.read_bytes() != before
    inputs = {p: p.read_bytes() for p in ico_files}
    one_line_error(*cli("register", *ico_files, "-o", ico_files[0], "--overwrite")[::2],
                   "is one of the inputs; choose another path (inputs are never overwritten)")
    assert {p: p.read_bytes() for p in ico_files} == inputs


def test_mixed_units_refused_then_converted(cli, tmp_path):
    icosphere(2, radius=0.01).save(tmp_path / "metres.ply")  # 0.03 across: inferred metres, with a warning
    icosphere(2, radius=10.0, seed=5).save(tmp_path / "mm.ply")
    rc, _, err = cli("match", tmp_path / "metres.ply", tmp_path / "mm.ply", "-o", tmp_path / "c.csv")
    assert rc == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("shapeot: warning: ") and "metres.ply" in lines[0]
    assert "taken to be in metres" in lines[0]
    assert lines[1] == ("shapeot: error: source is in m and target in mm; pass --to-units mm to convert them, or "
                        "--units if a file's units were inferred wrongly")
    assert not (tmp_path / "c.csv").exists()
    rc, printed, _ = cli("match", tmp_path / "metres.ply", tmp_path / "mm.ply", "-o", tmp_path / "c.csv",
                         "--to-units", "mm")
    assert rc == 0 and "mm^2" in printed
    rc, _, err = cli("register", tmp_path / "metres.ply", tmp_path / "mm.ply", "-o", tmp_path / "w.vtp")
    assert rc == 2 and "source is in m and target in mm" in err and not (tmp_path / "w.vtp").exists()


@pytest.mark.parametrize("args,fragment", [
    (["-o", "{t}/w.xyz"], "w.xyz: unsupported file type"),
    (["-o", "{t}/w.vtp", "--json", "{t}/s.txt"],
     "s.txt: the summary is written as JSON; give a file name ending in .json"),
    (["-o", "{t}/w.vtp", "--device", "bogus"],
     "--device: device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'bogus'"),
    (["-o", "{t}/w.vtp", "--device", "cuda"], "CUDA is not available here"),
    (["-o", "{t}/file/w.vtp"], "is a file, so the folder"),
    (["-o", "{t}/w.vtp", "--landmarks", "{t}/nan.csv", "{t}/ok.csv"],
     "nan.csv: 1 landmark(s) have NaN or infinite coordinates (first: landmark 2)"),
])
def test_register_refuses_before_the_work(cli, ico_files, tmp_path, tree, args, fragment):
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    (tmp_path / "file").write_text("")
    (tmp_path / "nan.csv").write_text("x,y,z\n1,2,3\nnan,0,0\n")
    (tmp_path / "ok.csv").write_text("x,y,z\n1,2,3\n4,5,6\n")
    before = tree(tmp_path)
    rc, out, err = cli("register", *ico_files, "--preset", "rigid", *[a.format(t=tmp_path) for a in args])
    one_line_error(rc, err, fragment)
    assert "source:" not in out  # refused before reading the shapes or registering
    assert tree(tmp_path) == before


def test_register_refuses_existing_outputs_and_keeps_them(cli, ico_files, tmp_path):
    (tmp_path / "w_prealign.txt").write_text("precious")
    rc, out, err = cli("register", *ico_files, "-o", tmp_path / "w.vtp", "--preset", "rigid")
    one_line_error(rc, err, "w_prealign.txt exists; pass --overwrite")
    assert (tmp_path / "w_prealign.txt").read_text() == "precious" and not (tmp_path / "w.vtp").exists()


def test_backends_bad_device(cli):
    rc, _, err = cli("backends", "--device", "bogus")
    one_line_error(rc, err, "--device: device must be 'auto', 'cpu', 'cuda' or 'cuda:N'")


def test_engine_errors_are_one_line(cli, ico_files, tmp_path):
    one_line_error(*cli("match", *ico_files, "-o", tmp_path / "c.csv", "--scaling", "1.5")[::2], "scaling")
    assert not (tmp_path / "c.csv").exists()


def test_label_option_on_match_and_register(cli, tmp_path, ico):
    import nibabel as nib

    vol = np.zeros((30, 30, 30), np.uint8)
    ijk = np.stack(np.meshgrid(*[np.arange(30)] * 3, indexing="ij"), -1)
    vol[np.linalg.norm(ijk - 14.5, axis=-1) < 10] = 3
    vol[1:3, 1:3, 1:3] = 7
    affine = np.eye(4)
    affine[:3, 3] = -14.5  # the ball is centred on the origin, as the sphere
    nib.save(nib.Nifti1Image(vol, affine), tmp_path / "scan.nii.gz")
    ico.save(tmp_path / "ico.vtp")
    rc, _, err = cli("match", tmp_path / "scan.nii.gz", tmp_path / "ico.vtp", "-o", tmp_path / "c.csv")
    one_line_error(rc, err, "holds several labels; choose one (--label N on the command line")
    rc, printed, err = cli("match", tmp_path / "scan.nii.gz", tmp_path / "ico.vtp", "-o", tmp_path / "c.csv",
                           "--label", "3")
    assert rc == 0, err
    rc, _, err = cli("match", tmp_path / "scan.nii.gz", tmp_path / "ico.vtp", "-o", tmp_path / "d.csv",
                     "--label", "4")
    one_line_error(rc, err, "label 4 is not in the scan; labels present: 3 ")
    assert "--label" in " ".join(os.popen(f"{sys.executable} -m shapeot register --help").read().split())


def test_template_of_a_file_and_overwrite_keeps_unrelated_files(cli, tmp_path):
    one_line_error(*cli("template", __file__, "-o", tmp_path / "t")[::2],
                   "is a file, not a folder; give the folder that holds the subjects")
    subjects = tmp_path / "in"
    subjects.mkdir()
    for i in range(2):
        icosphere(2, seed=i).save(subjects / f"s{i}.vtp")
    out = tmp_path / "t"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "summary.json").write_text("old")
    one_line_error(*cli("template", subjects, "-o", out, "--iterations", "1", "--modes", "1")[::2],
                   "exists; pass --overwrite")
    assert (out / "summary.json").read_text() == "old"
    rc, _, err = cli("template", subjects, "-o", out, "--iterations", "1", "--modes", "1", "--overwrite")
    assert rc == 0, err
    assert (out / "notes.txt").read_text() == "my notes"  # not written by shapeot: kept
    assert (out / "summary.json").read_text().startswith("{")  # written by shapeot: replaced
    assert not [p for p in tmp_path.rglob(".*")]  # no staging folder left


def test_demo_does_not_overwrite(cli, tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "lh_to_mirrored_rh_correspondences.csv").write_text("previous run")
    rc, printed, err = cli("demo", "-o", out, "--no-register")
    one_line_error(rc, err, "lh_to_mirrored_rh_correspondences.csv exists; pass --overwrite")
    assert printed == "" and (out / "lh_to_mirrored_rh_correspondences.csv").read_text() == "previous run"


@pytest.mark.parametrize("args,fragment", [
    (["backends", "--device", "bogus"], "--device: device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (["match", "{src}", "{tgt}", "-o", "{t}/x.xyz"], "give a file name ending in .csv"),
    (["register", "{t}/nan.vtk", "{tgt}", "-o", "{t}/w.vtp"], "nan.vtk: VTK could not read it"),
])
def test_exit_status_in_a_subprocess(ico_files, tmp_path, args, fragment):
    (tmp_path / "nan.vtk").write_text("# vtk DataFile Version 4.2\nx\nASCII\nDATASET POLYDATA\nPOINTS 3 double\n"
                                      "0 0 0 nan 1 0 0 1 0\nPOLYGONS 1 4\n3 0 1 2\n")
    argv = [a.format(src=ico_files[0], tgt=ico_files[1], t=tmp_path) for a in args]
    proc = subprocess.run([sys.executable, "-m", "shapeot", *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SHAPEOT_DISABLE_KEOPS": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("shapeot: error: ")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr
    assert not (tmp_path / "x.xyz").exists() and not (tmp_path / "w.vtp").exists()
