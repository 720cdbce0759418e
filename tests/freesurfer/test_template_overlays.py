"""``shapeot template FOLDER --overlay lh.thickness``: each subject's overlay averaged onto the
template (a group map), checked against an analytic answer.

Three subject folders are known warps of one surface, vertex k of each the image of the base's
vertex k. Subject i's thickness is f(base vertex) + offset_i: where the template's correspondence
is right, the group mean is f + mean(offset) and the group SD is exactly the SD of the offsets
(0.327 mm); wrong correspondences add f's variation (a range of 2 mm) to the SD."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import thickness, write_subject

OFFSETS = np.array([0.0, 0.4, 0.8])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, small_lh):
    from nibabel.freesurfer import write_morph_data

    from shapeot.shapes.synthetic import warp_pair

    root = tmp_path_factory.mktemp("fs_cohort")
    base = small_lh.decimate(1200)
    f = thickness(np.asarray(base.points))
    for i, offset in enumerate(OFFSETS):
        pair = warp_pair(base, 10 + i, amplitude=3.0, angle_deg=4.0, translation_mm=2.0, resample=False)
        folder = write_subject(root / f"subj{i + 1}", pair.truth, np.asarray(base.faces), overlays=False,
                               cras=[2.0 * i, -3.0 * i, 5.0 * i])
        write_morph_data(str(folder / "surf" / "lh.thickness"), (f + offset).astype(np.float32))
    return root, f


@pytest.mark.slow
def test_group_mean_and_sd_of_an_overlay(tmp_path, cohort, capsys):
    import nibabel.freesurfer as fs

    from shapeot.cli import main
    from shapeot.shapes import load

    root, f = cohort
    rc = main(["template", str(root), "-o", str(tmp_path / "tpl"), "--iterations", "1", "--overlay", "lh.thickness",
               "--quiet", "--json", str(tmp_path / "tpl_summary.json")])
    assert rc == 0, capsys.readouterr()
    mean = fs.read_morph_data(str(tmp_path / "tpl" / "overlays" / "lh.thickness.mean"))
    sd = fs.read_morph_data(str(tmp_path / "tpl" / "overlays" / "lh.thickness.sd"))
    n = load(next((tmp_path / "tpl").glob("template.*"))).n_points
    assert len(mean) == len(sd) == n
    print(f"group SD median {np.median(sd):.3f} mm (exact {OFFSETS.std():.3f}); mean median {np.median(mean):.3f} "
          f"(exact {np.median(f) + OFFSETS.mean():.3f})")
    assert abs(np.median(sd) - OFFSETS.std()) < 0.05
    assert abs(np.median(mean) - (np.median(f) + OFFSETS.mean())) < 0.1
    assert (tmp_path / "tpl_summary.json").is_file()


def test_overlay_of_subjects_not_from_folders_is_a_clear_error(tmp_path, capsys):
    """Meshes have no subject folder to look an overlay up in: one line, before any work."""
    from shapeot.cli import main

    folder = tmp_path / "meshes"
    folder.mkdir()
    import shutil
    from pathlib import Path

    cohort = Path(__file__).resolve().parents[2] / "sample_meshes" / "cohort"
    for i in (1, 2):
        shutil.copy(cohort / f"subject_{i:02d}.gii", folder)
    rc = main(["template", str(folder), "-o", str(tmp_path / "tpl"), "--overlay", "lh.thickness", "--iterations", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "lh.thickness" in err and "FreeSurfer subject folder" in err
    assert not (tmp_path / "tpl").exists()
