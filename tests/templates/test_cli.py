"""``shapeot template FOLDER -o OUTDIR``: outputs, file round trips, refusals and errors.

One real run (three subjects of the sample cohort, one iteration) in a folder that also holds a
corrupt mesh and a text file; the error cases stop before any registration.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from .conftest import COHORT


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    src = tmp_path_factory.mktemp("subjects")
    for i in (1, 2, 3):
        shutil.copy(COHORT / f"subject_{i:02d}.gii", src)
    (src / "broken.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n")
    (src / "notes.txt").write_text("not a mesh\n")
    return src


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    """(exit status, OUTDIR, what the command printed on stdout)."""
    import contextlib
    import io

    from shapeot.cli import main

    out = tmp_path_factory.mktemp("results") / "tpl"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["template", str(folder), "-o", str(out), "--iterations", "1", "--modes", "2"])
    return rc, out, printed.getvalue()


@pytest.mark.slow
def test_outputs(run):
    from shapeot.shapes import load

    rc, out, _ = run
    assert rc == 0
    template = load(out / "template.vtp")
    names = ["subject_01", "subject_02", "subject_03"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_subjects"] == 3 and summary["n_vertices"] == template.n_points
    assert [s["name"] for s in summary["subjects"]] == [f"{n}.gii" for n in names]
    for n in names:
        corr = load(out / "subjects" / f"{n}.vtp")
        # Same vertex indexing and faces as the template; the displacement point data and the CSV
        # both equal the corresponded positions minus the template's (file round trips).
        np.testing.assert_array_equal(corr.faces, template.faces)
        d = np.asarray(corr.point_data["displacement"])
        np.testing.assert_allclose(d, corr.points - template.points, atol=1e-4)
        csv = np.loadtxt(out / "subjects" / f"{n}_displacement.csv", delimiter=",", skiprows=1)
        np.testing.assert_array_equal(csv[:, 0], np.arange(template.n_points))
        np.testing.assert_allclose(csv[:, 1:], d, atol=2e-6)
        m = np.loadtxt(out / "subjects" / f"{n}_alignment.txt")
        assert m.shape == (4, 4) and np.allclose(m[3], [0, 0, 0, 1])
        # The alignment file maps the subject into the template's frame, onto its corresponded
        # mesh: the same residual as the summary's "fit", and well below what the inverted matrix
        # or none leaves (measured 2026-12-02 on the >= 3 mm cohort: fit 1.03 / 2.30 / 0.02 mm,
        # inverted 4.7 / 5.3 / 0.37 mm, identity 2.8 / 3.3 / 0.18 mm).
        from shapeot.metrics import chamfer

        sub = load(COHORT / f"{n}.gii")

        def residual(matrix, corr=corr, sub=sub):
            return chamfer(corr, sub.with_points(sub.points @ matrix[:3, :3].T + matrix[:3, 3]), surface=True)

        fit = next(s["fit_mm"] for s in summary["subjects"] if s["name"] == f"{n}.gii")
        assert abs(residual(m) - fit) < 0.02  # fit: 2,000-vertex estimate
        assert fit < 0.8 * min(residual(np.linalg.inv(m)), residual(np.eye(4)))
    modes = json.loads((out / "modes" / "modes.json").read_text())
    assert len(modes["variances_mm2"]) == 2 and modes["variances_mm2"][0] >= modes["variances_mm2"][1] > 0
    mean = load(out / "modes" / "mean.vtp")
    plus, minus = load(out / "modes" / "mode_01_plus2sd.vtp"), load(out / "modes" / "mode_01_minus2sd.vtp")
    step = np.asarray(plus.point_data["mode"])  # one standard deviation, mm
    np.testing.assert_allclose(plus.points - mean.points, 2 * step, atol=1e-4)
    np.testing.assert_allclose(minus.points - mean.points, -2 * step, atol=1e-4)
    np.testing.assert_allclose(np.sqrt((np.asarray(template.weights) * (step ** 2).sum(1)).sum()),
                               np.sqrt(modes["variances_mm2"][0]), rtol=0.05)  # RMS of 1 SD (template areas)
    assert (out / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_printed_report(run):
    _, out, printed = run
    # a file that failed is named with its reason; side files that are no shapes, in one line
    assert "3 shape(s) loaded, 1 file(s) skipped" in printed
    assert "skipped broken.ply:" in printed and "notes.txt" not in printed
    assert "ignored 1 file(s) that are not meshes or label maps (.txt)" in printed
    assert "(medoid)" in printed and "1 iteration(s), last move" in printed
    assert f"files to {out}" in printed


def test_refuses_to_overwrite(run, folder, capsys):
    from shapeot.cli import main

    rc, out, _ = run
    before = (out / "summary.json").read_bytes()
    assert main(["template", str(folder), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists; pass --overwrite" in err[0]
    assert (out / "summary.json").read_bytes() == before
    assert main(["template", str(folder), "-o", str(folder), "--overwrite"]) == 2  # never the input folder
    assert "would replace the input folder" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["one subject", "missing folder", "bad iterations", "label missing"])
def test_errors_are_one_line_and_leave_nothing(case, tmp_path, capsys):
    from shapeot.cli import main

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(COHORT / "subject_01.gii", src)
    out = tmp_path / "out"
    args = {"one subject": [str(src)],
            "missing folder": [str(tmp_path / "nowhere")],
            "bad iterations": [str(src), "--iterations", "0"],
            "label missing": [str(src), "--label", "3"]}[case]
    if case in ("bad iterations", "label missing"):
        shutil.copy(COHORT / "subject_02.gii", src)
    if case == "label missing":  # a label map without label 3 next to the meshes: skipped, named
        import nibabel as nib

        vol = np.zeros((12, 12, 12), np.uint8)
        vol[3:9, 3:9, 3:9] = 1
        nib.save(nib.Nifti1Image(vol, np.eye(4)), src / "scan.nii.gz")
        (src / "subject_02.gii").unlink()
    rc = main(["template", *args, "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("shapeot: error:"), err
    expected = {"one subject": "1 shape(s) loaded, a template needs at least two",
                "missing folder": "no such folder",
                "bad iterations": "iterations: must be between 1 and 1,000; got 0",
                "label missing": "scan.nii.gz: label 3 is not in the scan; labels present"}[case]
    assert expected in err[0]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
