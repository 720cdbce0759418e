"""The FreeSurfer user's workflow through the command line, on subject folders with different
``c_ras`` (conftest): subject IDs under $SUBJECTS_DIR, one ``register`` that writes the moved
surface in the target subject's frame, overlays, the transform, ITK composites and ANTs' pair;
then ``apply``, ``transfer`` and ``export-itk`` on the saved transform, without a new registration;
``--hemi both``; and ``register-many`` with a configuration, JSON, ITK files and a skipped target."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from .conftest import CRAS, CRAS_TGT, MIRROR, thickness, volume_info

LPS = np.array([-1.0, -1.0, 1.0])


def _move(tx, ras: np.ndarray) -> np.ndarray:
    return np.array([tx.TransformPoint(tuple(map(float, p))) for p in np.asarray(ras) * LPS]) * LPS


@pytest.fixture(scope="module")
def fast_toml(tmp_path_factory, fast_config):
    path = tmp_path_factory.mktemp("config") / "fast.toml"
    path.write_text(fast_config.to_toml())
    return path


@pytest.fixture(scope="module")
def registered(tmp_path_factory, subjects, fast_toml):
    """One `shapeot register src tgt` by subject ID, with every output; (folder, exit status)."""
    from shapeot.cli import main

    out = tmp_path_factory.mktemp("run")
    mp = pytest.MonkeyPatch()
    mp.setenv("SUBJECTS_DIR", str(subjects["root"]))
    try:
        rc = main(["register", "src", "tgt", "-o", str(out / "lh.src_on_tgt"), "--config", str(fast_toml),
                   "--overlay", "lh.thickness", "--overlay", "lh.aparc.annot",
                   "--save-transform", str(out / "src_to_tgt.npz"), "--itk-transform", str(out / "src_to_tgt.h5"),
                   "--itk-inverse", str(out / "tgt_to_src.h5"), "--ants", str(out / "ants_"), "--quiet"])
    finally:
        mp.undo()
    return out, rc


@pytest.mark.slow
def test_the_moved_surface_is_in_the_target_subjects_frame(registered, subjects):
    """Read as FreeSurfer reads it (tkr-RAS + volume_info), the moved lh.pial lies on the target
    subject's own lh.pial: the frames of the two subjects are 45 mm apart."""
    import nibabel.freesurfer as fs
    from scipy.spatial import cKDTree

    from shapeot.shapes import load

    out, rc = registered
    assert rc == 0
    coords, faces, info = fs.read_geometry(str(out / "lh.src_on_tgt"), read_metadata=True)
    np.testing.assert_allclose(info["cras"], CRAS_TGT)
    target_tkr = fs.read_geometry(str(subjects["root"] / "tgt" / "surf" / "lh.pial"))[0]
    gap = cKDTree(target_tkr).query(coords)[0]
    print(f"moved lh.pial in the target's tkr-RAS: {gap.mean():.3f} mm from the target's lh.pial (mean)")
    assert gap.mean() < 0.5
    # and against the known warp, vertex by vertex (scanner RAS: what shapeot reads back)
    source = load(subjects["root"] / "src")
    truth = subjects["warp"].apply(source.points)
    assert np.linalg.norm(load(out / "lh.src_on_tgt").points - truth, axis=1).mean() < 1.0


@pytest.mark.slow
def test_overlays_transfer_and_apply_without_a_new_registration(registered, subjects, tmp_path):
    import nibabel.freesurfer as fs

    from shapeot.cli import main
    from shapeot.shapes import load

    out, rc = registered
    assert rc == 0
    target = load(subjects["root"] / "tgt")
    truth_at_target = subjects["back"](target.points)
    th = fs.read_morph_data(str(out / "lh.src_on_tgt_lh.thickness"))
    assert len(th) == target.n_points and np.corrcoef(th, thickness(truth_at_target))[0, 1] >= 0.95
    labels, _, _ = fs.read_annot(str(out / "lh.src_on_tgt_lh.aparc.annot"))
    assert np.mean(labels == subjects["parcels"](truth_at_target)) >= 0.9

    # an overlay made after the registration: `transfer` carries it with the saved transform,
    # with the resampling `register --overlay` used (the same thickness values, exactly)
    src = subjects["root"] / "src"
    sulc = np.sin(np.asarray(load(src).points)[:, 1] / 12.0).astype(np.float32)
    fs.write_morph_data(str(src / "surf" / "lh.sulc"), sulc)
    assert main(["transfer", str(out / "src_to_tgt.npz"), "lh.sulc", "lh.thickness", "-o", str(tmp_path / "t"),
                 "--quiet"]) == 0
    np.testing.assert_array_equal(fs.read_morph_data(str(tmp_path / "t" / "lh.thickness")), th)
    moved_sulc = fs.read_morph_data(str(tmp_path / "t" / "lh.sulc"))
    expected = np.sin(truth_at_target[:, 1] / 12.0)
    assert len(moved_sulc) == target.n_points and np.corrcoef(moved_sulc, expected)[0, 1] >= 0.95

    # `apply` moves another surface of the source subject (lh.white) into the target's frame
    source = load(src)
    fs.write_geometry(str(src / "surf" / "lh.white"), np.asarray(source.points) - CRAS,
                      np.asarray(source.faces, dtype=np.int32), volume_info=volume_info())
    assert main(["apply", str(out / "src_to_tgt.npz"), str(src / "surf" / "lh.white"),
                 "-o", str(tmp_path / "lh.white_on_tgt")]) == 0
    moved, _, info = fs.read_geometry(str(tmp_path / "lh.white_on_tgt"), read_metadata=True)
    pial, _, _ = fs.read_geometry(str(out / "lh.src_on_tgt"), read_metadata=True)
    np.testing.assert_allclose(info["cras"], CRAS_TGT)
    np.testing.assert_allclose(moved, pial, atol=1e-3)  # float32 files
    # --frame source keeps the source subject's frame (same scanner points)
    assert main(["apply", str(out / "src_to_tgt.npz"), str(src / "surf" / "lh.white"),
                 "-o", str(tmp_path / "lh.white_src_frame"), "--frame", "source"]) == 0
    kept, _, info = fs.read_geometry(str(tmp_path / "lh.white_src_frame"), read_metadata=True)
    np.testing.assert_allclose(info["cras"], CRAS)
    np.testing.assert_allclose(kept + CRAS, moved + CRAS_TGT, atol=1e-3)


@pytest.mark.slow
def test_itk_files_and_export_from_the_saved_transform(registered, subjects, tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    from shapeot.cli import main
    from shapeot.shapes import load

    out, rc = registered
    assert rc == 0
    source = load(subjects["root"] / "src")
    warped = load(out / "lh.src_on_tgt").points
    fwd = sitk.ReadTransform(str(out / "src_to_tgt.h5"))
    inv = sitk.ReadTransform(str(out / "tgt_to_src.h5"))
    pts = np.asarray(source.points)[::5]
    assert np.linalg.norm(_move(fwd, pts) - warped[::5], axis=1).max() <= 0.1  # file precision: float32
    assert np.linalg.norm(_move(inv, warped[::5]) - pts, axis=1).max() <= 0.1
    for name in ("ants_0GenericAffine.mat", "ants_1Warp.nii.gz", "ants_1InverseWarp.nii.gz"):
        assert (out / name).is_file()
    # `export-itk` from the saved transform writes the same forward transform
    assert main(["export-itk", str(out / "src_to_tgt.npz"), "--itk-transform", str(tmp_path / "again.h5"),
                 "--quiet"]) == 0
    again = sitk.ReadTransform(str(tmp_path / "again.h5"))
    np.testing.assert_allclose(_move(again, pts), _move(fwd, pts), atol=1e-6)
    # a NIfTI name for a composite is refused before any work, naming the way that works
    assert main(["export-itk", str(out / "src_to_tgt.npz"), "--itk-transform", str(tmp_path / "w.nii.gz")]) == 2
    assert not (tmp_path / "w.nii.gz").exists()


@pytest.mark.slow
def test_nothing_is_overwritten(registered, subjects, capsys, monkeypatch):
    from shapeot.cli import main

    out, rc = registered
    monkeypatch.setenv("SUBJECTS_DIR", str(subjects["root"]))
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["register", "src", "tgt", "-o", str(out / "lh.src_on_tgt"), "--preset", "rigid"]) == 2
    assert "exists" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.slow
def test_both_hemispheres_in_one_call(tmp_path, subjects, fast_toml):
    from shapeot.cli import main
    from shapeot.shapes import load

    rc = main(["register", "src", "tgt", "--subjects-dir", str(subjects["root"]), "--hemi", "both",
               "-o", str(tmp_path / "src_on_tgt.vtp"), "--config", str(fast_toml), "--quiet",
               "--overlay", "lh.thickness", "--save-transform", str(tmp_path / "t.npz")])
    assert rc == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    for hemi in ("lh", "rh"):
        assert f"{hemi}.src_on_tgt.vtp" in names and f"{hemi}.t.npz" in names
        assert f"{hemi}.src_on_tgt_{hemi}.thickness" in names  # each hemisphere's own overlay
    src_rh = load(subjects["root"] / "src", surf="rh.pial")
    truth_rh = subjects["warp"].apply(np.asarray(src_rh.points) * MIRROR) * MIRROR
    err = np.linalg.norm(load(tmp_path / "rh.src_on_tgt.vtp").points - truth_rh, axis=1)
    assert err.mean() < 1.0


@pytest.mark.slow
def test_register_many_with_config_json_itk_and_a_skipped_target(tmp_path, subjects, fast_toml, capsys):
    sitk = pytest.importorskip("SimpleITK")
    from shapeot.cli import main

    root = subjects["root"]
    listing = tmp_path / "sources.txt"
    listing.write_text(f"{root / 'src'}\n{root / 'tgt'}\n")
    rc = main(["register-many", str(listing), "tgt", "--subjects-dir", str(root), "-o", str(tmp_path / "out"),
               "--config", str(fast_toml), "--json", str(tmp_path / "batch.json"), "--itk-transform", "to_tgt.h5",
               "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    with open(tmp_path / "out" / "summary.csv") as fh:
        rows = {r["subject"]: r for r in csv.DictReader(fh)}
    assert rows["tgt"]["status"] == "skipped" and "is the target" in rows["tgt"]["error"]
    assert rows["src"]["status"] == "ok"
    assert "1 skipped" in printed
    summary = json.loads((tmp_path / "batch.json").read_text())
    assert [r["status"] for r in summary["subjects"]] == ["skipped", "ok"]
    assert summary["config"]["levels"][0]["points"] == 800  # the --config file's, not the preset's
    tx = sitk.ReadTransform(str(tmp_path / "out" / "src" / "to_tgt.h5"))
    assert "Composite" in tx.GetName()
