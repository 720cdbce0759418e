"""The files in sample_meshes/ load, are what README.md says they are, and stay small."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial import cKDTree

import shapeot.shapes as shapes


def test_fsaverage5_pial_surfaces(samples):
    lh = shapes.load(samples / "fsaverage5_lh_pial.gii")
    rh = shapes.load(samples / "fsaverage5_rh_pial.gii")
    for surface in (lh, rh):
        assert surface.n_points == 10242 and len(surface.faces) == 20480
        assert surface.is_closed
        assert 150 < surface.diameter < 200  # a hemisphere, in mm
    # RAS: the left hemisphere lies at x < 0 (left), the right one at x > 0.
    assert lh.points[:, 0].mean() < -20 and rh.points[:, 0].mean() > 20


def test_fsaverage5_matches_the_file_nilearn_ships(samples):
    pytest.importorskip("nilearn")
    from importlib import resources

    # importlib.resources finds the file without importing nilearn.datasets (slow: sklearn).
    source = resources.files("nilearn") / "datasets" / "data" / "fsaverage5" / "pial_left.gii.gz"
    np.testing.assert_array_equal(shapes.load(str(source)).points,
                                  shapes.load(samples / "fsaverage5_lh_pial.gii").points)


def test_tissue_label_map(samples):
    path = samples / "mni152_tissue_labels_2mm.nii.gz"
    labels = shapes.list_labels(path)
    assert [lab.value for lab in labels] == [1, 2]
    assert all(lab.volume_mm3 == pytest.approx(lab.voxels * 8.0) for lab in labels)  # 2 mm voxels
    white = shapes.load(path, label=2)
    lo, hi = white.points.min(axis=0), white.points.max(axis=0)
    assert lo[0] < -50 and hi[0] > 50  # both hemispheres, MNI coordinates in mm
    assert abs(white.weights @ white.points[:, 0]) < 2.0  # a symmetric atlas: centred on x = 0
    # Left-right and front-back, the white matter lies within the fsaverage pial surfaces (both
    # are in MNI space); not in z, where the brainstem reaches below the cortex.
    pial = np.vstack([shapes.load(samples / f"fsaverage5_{h}_pial.gii").points for h in ("lh", "rh")])
    assert np.all(lo[:2] > pial.min(axis=0)[:2] - 5) and np.all(hi[:2] < pial.max(axis=0)[:2] + 5)
    assert 2500 < shapes.load(path, label=2, n_points=3000).n_points < 3500


def test_cohort(samples):
    folder = samples / "cohort"
    manifest = json.loads((folder / "cohort.json").read_text())
    reference = shapes.load(samples / "cohort_reference.gii")
    mode = np.load(folder / "mode.npy")
    assert mode.shape == reference.points.shape
    subjects = manifest["subjects"]
    assert 8 <= len(subjects) <= 12
    truths = []
    for entry in subjects:
        subject = shapes.load(folder / entry["surface"])
        truth = np.load(folder / entry["truth"]).astype(np.float64)
        assert truth.shape == reference.points.shape
        assert subject.n_points == entry["n_points"]
        # The ground truth lies on the subject's surface, but no subject vertex is a reference twin.
        distance, _ = cKDTree(subject.points).query(truth)
        assert np.median(distance) < 2.0
        assert cKDTree(reference.points).query(subject.points)[0].min() > 1e-4
        truths.append(truth)
    mean = np.mean(truths, axis=0)
    assert np.linalg.norm(mean - reference.points, axis=1).max() < 1.0  # the true mean (mm)


def test_readme_covers_every_file_and_folder_is_small(samples):
    readme = (samples / "README.md").read_text()
    files = [p for p in samples.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for path in files:
        if path.name == "README.md" or (path.parent.name == "cohort" and path.name.startswith("subject_")):
            continue  # described together, as a pattern
        assert path.name in readme, f"{path.name} is not described in sample_meshes/README.md"
    assert "subject_NN" in readme
    assert sum(p.stat().st_size for p in files) < 10e6
