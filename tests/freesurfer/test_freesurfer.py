"""FreeSurfer subject folders, overlays and the colour table, against nibabel's own readers/writers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import CRAS, thickness


def _surface(small_lh):
    return np.asarray(small_lh.points), np.asarray(small_lh.faces)


def test_load_subject_adds_cras_from_volume_info(subjects):
    from nibabel.freesurfer import read_geometry

    from shapeot.shapes.freesurfer import load_subject

    shape = load_subject(subjects["root"] / "src", "lh.pial")
    coords, faces = read_geometry(str(subjects["root"] / "src" / "surf" / "lh.pial"))
    np.testing.assert_allclose(shape.points, coords + CRAS, atol=1e-9)
    np.testing.assert_array_equal(shape.faces, faces)
    assert shape.meta["freesurfer_frame"] == "scanner" and shape.name == "src/lh.pial"


def test_load_subject_without_volume_info_uses_orig_mgz(tmp_path, small_lh):
    import nibabel as nib
    from nibabel.freesurfer import write_geometry

    from shapeot.shapes.freesurfer import load_subject

    pts, faces = _surface(small_lh)
    (tmp_path / "s" / "surf").mkdir(parents=True)
    (tmp_path / "s" / "mri").mkdir()
    write_geometry(str(tmp_path / "s" / "surf" / "lh.white"), pts, faces.astype(np.int32))  # no volume_info
    affine = np.array([[-1.0, 0, 0, 140.0], [0, 0, 1, -100.0], [0, -1, 0, 120.0], [0, 0, 0, 1]])
    img = nib.MGHImage(np.zeros((256, 256, 256), dtype=np.uint8), affine)
    nib.save(img, str(tmp_path / "s" / "mri" / "orig.mgz"))
    hdr = nib.load(str(tmp_path / "s" / "mri" / "orig.mgz")).header
    m = hdr.get_vox2ras() @ np.linalg.inv(hdr.get_vox2ras_tkr())
    shape = load_subject(tmp_path / "s", "lh.white")
    np.testing.assert_allclose(shape.points, pts @ m[:3, :3].T + m[:3, 3], atol=1e-6)
    # saved back as a FreeSurfer surface: tkr-RAS again, with the c_ras recorded
    shape.save(tmp_path / "lh.white.copy")
    from nibabel.freesurfer import read_geometry

    coords, _, info = read_geometry(str(tmp_path / "lh.white.copy"), read_metadata=True)
    np.testing.assert_allclose(coords, pts, atol=1e-4)
    np.testing.assert_allclose(info["cras"], m[:3, 3], atol=1e-6)


def test_load_subject_errors(tmp_path, subjects):
    from shapeot.shapes import ShapeFileError
    from shapeot.shapes.freesurfer import load_subject

    with pytest.raises(FileNotFoundError, match="lh.pial"):  # lists what is there
        load_subject(subjects["root"] / "rem", "rh.pial")  # rem has lh only
    with pytest.raises(ShapeFileError, match="surf/"):
        load_subject(tmp_path)


def test_morph_annot_gifti_mgh_round_trips(tmp_path, subjects, small_lh):
    import nibabel as nib
    from nibabel.freesurfer import read_annot, read_morph_data

    from shapeot.shapes.overlays import read_overlay, write_overlay

    src = subjects["root"] / "src"
    n = small_lh.n_points
    th = read_overlay(src / "surf" / "lh.thickness", small_lh)
    assert th.kind == "continuous" and th.format == "morph"
    np.testing.assert_allclose(th.values, thickness(np.asarray(small_lh.points)), atol=1e-5)  # float32 file
    write_overlay(th, tmp_path / "lh.thickness")
    np.testing.assert_array_equal(read_morph_data(str(tmp_path / "lh.thickness")),
                                  read_morph_data(str(src / "surf" / "lh.thickness")))

    an = read_overlay(src / "label" / "lh.aparc.annot", n)
    assert an.kind == "labels" and an.label_names[3] == "parcel03"
    write_overlay(an, tmp_path / "lh.aparc.annot")
    a1, a2 = read_annot(str(src / "label" / "lh.aparc.annot")), read_annot(str(tmp_path / "lh.aparc.annot"))
    np.testing.assert_array_equal(a1[0], a2[0])
    np.testing.assert_array_equal(a1[1], a2[1])
    assert a1[2] == a2[2]

    # GIfTI: continuous (two arrays) and labels with their table
    two = th.replace(values=np.column_stack([th.values, 2 * th.values]), format="gifti")
    write_overlay(two, tmp_path / "lh.thick.func.gii")
    back = read_overlay(tmp_path / "lh.thick.func.gii", n)
    np.testing.assert_allclose(back.values, two.values, rtol=1e-6)
    assert np.asarray(nib.load(str(tmp_path / "lh.thick.func.gii")).darrays[1].data).shape == (n,)
    write_overlay(an, tmp_path / "lh.aparc.label.gii")
    lab = read_overlay(tmp_path / "lh.aparc.label.gii", n)
    assert lab.kind == "labels" and lab.label_names == an.label_names
    np.testing.assert_array_equal(lab.values, an.values)
    # MGH surface overlay
    write_overlay(th, tmp_path / "lh.thickness.mgh")
    assert nib.load(str(tmp_path / "lh.thickness.mgh")).shape[:1] == (n,)
    np.testing.assert_allclose(read_overlay(tmp_path / "lh.thickness.mgh", n).values, th.values, rtol=1e-6)


def test_label_file_read_and_written(tmp_path, subjects, small_lh):
    from nibabel.freesurfer import read_label

    from shapeot.shapes.freesurfer import load_subject
    from shapeot.shapes.overlays import read_overlay, write_overlay

    shape = load_subject(subjects["root"] / "src")
    inside = np.flatnonzero(np.asarray(shape.points)[:, 2] > np.median(shape.points[:, 2]))
    ov = read_overlay(subjects["root"] / "src" / "label" / "lh.aparc.annot", shape)
    ov = ov.replace(values=np.isin(np.arange(shape.n_points), inside).astype(int), label_names={1: "top"})
    write_overlay(ov, tmp_path / "lh.top.label", surface=shape)
    vertices = read_label(str(tmp_path / "lh.top.label"))
    np.testing.assert_array_equal(np.sort(vertices), inside)
    back = read_overlay(tmp_path / "lh.top.label", shape)
    np.testing.assert_array_equal(back.values, ov.values)
    # coordinates in the file are tkr-RAS, like FreeSurfer's
    rows = np.loadtxt(tmp_path / "lh.top.label", skiprows=2)
    np.testing.assert_allclose(rows[:, 1:4], np.asarray(shape.points)[rows[:, 0].astype(int)] - CRAS, atol=2e-3)
    with pytest.raises(Exception, match="surface"):
        read_overlay(tmp_path / "lh.top.label")


def test_vertex_count_and_kind_checks(subjects, small_lh):
    from shapeot.shapes import ShapeFileError
    from shapeot.shapes.overlays import read_overlay

    with pytest.raises(ShapeFileError, match="vertices"):
        read_overlay(subjects["root"] / "src" / "surf" / "lh.thickness", small_lh.n_points + 1)
    with pytest.raises(ShapeFileError, match="surface, not an overlay"):
        read_overlay(subjects["root"] / "src" / "surf" / "lh.pial")


def test_color_lut_names(tmp_path, monkeypatch):
    from shapeot.shapes import LabelNotFoundError
    from shapeot.shapes.freesurfer import color_lut, label_name, label_value

    monkeypatch.delenv("FREESURFER_HOME", raising=False)
    assert label_value("Left-Hippocampus") == 17
    assert label_value("right-hippocampus") == 53
    assert label_value("ctx-lh-precentral") == 1024 and label_value("ctx-rh-insula") == 2035
    assert label_value("wm-lh-superiorfrontal") == 3028 and label_value("Left-Thalamus-Proper") == 10
    assert label_name(251) == "CC_Posterior" and label_name(9999) is None
    names, colors = color_lut()
    assert colors[17] == (220, 216, 20, 255)
    with pytest.raises(LabelNotFoundError, match="Left-Hippocampus"):
        label_value("Left-Hipocampus")
    # $FREESURFER_HOME's table wins when present
    (tmp_path / "FreeSurferColorLUT.txt").write_text("#No. Label Name: R G B A\n17 My-Hippo 1 2 3 0\n")
    monkeypatch.setenv("FREESURFER_HOME", str(tmp_path))
    assert label_value("My-Hippo") == 17 and label_name(17) == "My-Hippo"


def test_load_folder_reads_a_subjects_dir(subjects):
    """A SUBJECTS_DIR is a template input: each subject folder gives its ``surf`` surface, in the
    same scanner coordinates as load_subject; a path pattern picks files below the folder."""
    import shapeot
    from shapeot.shapes.freesurfer import load_subject

    root = subjects["root"]
    (root / "notes.txt").write_text("cohort of three\n")
    (root / "fsaverage_links").mkdir(exist_ok=True)  # a folder that is not a subject: ignored
    loaded = shapeot.load_folder(root)
    assert [Path(p).parent.parent.name for p in loaded.paths] == ["rem", "src", "tgt"]
    ref = load_subject(root / "src")
    assert np.array_equal(loaded[1].points, ref.points) and np.array_equal(loaded[1].faces, ref.faces)
    report = loaded.report()
    assert "3 shape(s) loaded" in report and "ignored 1 file(s) that are not meshes or label maps (.txt)" in report
    assert "skipped" not in report
    # a pattern on the names picks subjects; one without the asked surface is skipped, with why
    (root / "src" / "surf" / "lh.white").write_bytes((root / "src" / "surf" / "lh.pial").read_bytes())
    (root / "tgt" / "surf" / "lh.white").write_bytes((root / "tgt" / "surf" / "lh.pial").read_bytes())
    white = shapeot.load_folder(root, pattern="*", surf="lh.white")
    assert [Path(p).parent.parent.name for p in white.paths] == ["src", "tgt"]
    assert [Path(s.path).name for s in white.skipped if "lh.white" in s.reason] == ["rem"]
    # a path pattern: the files themselves (the FreeSurfer reader applies the same c_ras)
    by_path = shapeot.load_folder(root, pattern="*/surf/lh.pial")
    assert [Path(p).parts[-3] for p in by_path.paths] == ["rem", "src", "tgt"]
    for a, b in zip(by_path, loaded):
        assert np.allclose(a.points, b.points)


def test_csv_overlay_round_trip_and_errors(tmp_path, small_lh):
    """CSV overlays: a header, an optional ``vertex`` column, one row per vertex; read back with
    Python's csv module (an independent reader), refused with the row that is wrong."""
    import csv

    from shapeot.shapes.overlays import Overlay, read_overlay, write_overlay

    n = small_lh.n_points
    values = np.column_stack([thickness(np.asarray(small_lh.points)), np.arange(n) * 0.5])
    ov = Overlay("lh.thick", values, "continuous", format="csv", meta={"array_names": ["thickness", "half"]})
    write_overlay(ov, tmp_path / "lh.thick.csv")
    with open(tmp_path / "lh.thick.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["vertex", "thickness", "half"] and len(rows) == n
    assert [int(r["vertex"]) for r in rows] == list(range(n))
    np.testing.assert_allclose([float(r["half"]) for r in rows], values[:, 1])
    back = read_overlay(tmp_path / "lh.thick.csv", n)
    np.testing.assert_allclose(back.values, values, rtol=1e-12)
    # one column without a vertex index reads as a (N,) overlay
    (tmp_path / "one.csv").write_text("value\n" + "\n".join(f"{v:.6f}" for v in values[:, 0]) + "\n")
    np.testing.assert_allclose(read_overlay(tmp_path / "one.csv", n).values, values[:, 0], atol=1e-6)
    with pytest.raises(ValueError, match="one.csv"):
        read_overlay(tmp_path / "one.csv", n + 1)  # wrong vertex count names the file
    (tmp_path / "bad.csv").write_text("value\n1.0\nthick\n" + "2.0\n" * (n - 2))
    with pytest.raises(ValueError, match="bad.csv"):
        read_overlay(tmp_path / "bad.csv", n)
