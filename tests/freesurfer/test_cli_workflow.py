"""Issue 19's goal, end to end through the command line: two FreeSurfer subject folders, one
`shapeot register` that writes the warped surface, the source's thickness and parcellation on
the target's vertices, an ITK transform that SimpleITK reads, and a transform file that
`shapeot apply` uses to move another surface (a copy of lh.pial saved as lh.white) the same way."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import CRAS, thickness, volume_info


@pytest.mark.slow
def test_one_command_gives_the_freesurfer_users_outputs(tmp_path, subjects):
    sitk = pytest.importorskip("SimpleITK")
    import nibabel.freesurfer as fs

    from shapeot.cli import main
    from shapeot.shapes import load

    src, tgt = subjects["root"] / "src", subjects["root"] / "tgt"
    out = tmp_path / "src_on_tgt.vtp"
    rc = main(["register", str(src), str(tgt), "-o", str(out), "--preset", "nonrigid",
               "--overlay", "lh.thickness", "--overlay", "lh.aparc.annot",
               "--save-transform", str(tmp_path / "src_to_tgt.npz"),
               "--itk-transform", str(tmp_path / "src_to_tgt.h5")])
    assert rc == 0
    warped = load(out)
    target = load(tgt)
    source = load(src)

    # thickness and parcels on the target's vertices, in FreeSurfer's own formats
    th = fs.read_morph_data(str(tmp_path / "src_on_tgt_lh.thickness"))
    truth = thickness(subjects["back"](target.points))
    assert len(th) == target.n_points and np.corrcoef(th, truth)[0, 1] >= 0.95
    labels, _, names = fs.read_annot(str(tmp_path / "src_on_tgt_lh.aparc.annot"))
    expected = subjects["parcels"](subjects["back"](target.points))
    assert len(labels) == target.n_points and np.mean(labels == expected) >= 0.95

    # the ITK field: TransformPoint (LPS) of every source vertex gives the warped vertex
    tx = sitk.ReadTransform(str(tmp_path / "src_to_tgt.h5"))
    lps = np.array([1.0, 1.0, 1.0]) * [-1, -1, 1]
    moved = np.array([tx.TransformPoint(tuple(map(float, p * lps))) for p in source.points[::7]]) * lps
    assert np.abs(moved - warped.points[::7]).max() < 0.1

    # the transform file moves another surface of the subject like the registration moved lh.pial
    fs.write_geometry(str(src / "surf" / "lh.white"), np.asarray(source.points) - CRAS,
                      np.asarray(source.faces, dtype=np.int32), volume_info=volume_info())
    assert main(["apply", str(tmp_path / "src_to_tgt.npz"), str(src / "surf" / "lh.white"),
                 "-o", str(tmp_path / "white_on_tgt.vtp")]) == 0
    white = load(tmp_path / "white_on_tgt.vtp")
    assert np.abs(white.points - warped.points).max() < 1e-6
    # nothing is overwritten without --overwrite: the second run refuses before any work
    assert main(["register", str(src), str(tgt), "-o", str(out), "--preset", "rigid"]) == 2
