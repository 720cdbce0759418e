"""The README's main job, OT part: it writes one correspondence per vertex, landing on the target."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from shapeot.cli import main
from shapeot.shapes import load


def test_demo_match_writes_correspondences_on_the_mirrored_hemisphere(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path), "--no-register", "--scaling", "0.5"]) == 0
    rows = np.loadtxt(tmp_path / "lh_to_mirrored_rh_correspondences.csv", delimiter=",", skiprows=1)
    lh = load("sample_meshes/fsaverage5_lh_pial.gii")
    rh = load("sample_meshes/fsaverage5_rh_pial.gii")
    assert rows.shape == (lh.n_points, 6)
    assert np.array_equal(rows[:, 0], np.arange(lh.n_points))
    target = rh.points * np.array([-1.0, 1.0, 1.0])
    # Barycentric targets are averages over ~blur (2.3 mm): they lie close to the target surface,
    # and the strongest partner is one of the target's vertices near them.
    dist, _ = cKDTree(target).query(rows[:, 1:4])
    assert np.median(dist) < 1.5
    partner = target[rows[:, 4].astype(int)]
    assert np.median(np.linalg.norm(partner - rows[:, 1:4], axis=1)) < 3.0
    assert abs(rows[:, 5].sum() - 1.0) < 0.05  # balanced: the masses leaving the vertices sum to ~1
    assert "Sinkhorn divergence" in capsys.readouterr().out
