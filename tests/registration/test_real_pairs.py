"""A real pair with no known truth: the left pial surface onto the right one mirrored (two different
hemispheres). The default preset must not fold, and its report must state how much the warp bends
and how close it fits (issue 16); benchmarks/real_pairs.py runs the full-size cases."""
from __future__ import annotations

import numpy as np
import pytest

from shapeot.metrics import folded_triangles, jacobian_determinants
from shapeot.registration import register

from .conftest import SAMPLES

pytestmark = pytest.mark.slow  # registrations of native hemispheres


@pytest.fixture(scope="module")
def hemispheres(brain):
    from shapeot.shapes import Shape, load

    rh = load(SAMPLES / "fsaverage5_rh_pial.gii").decimate(brain.n_points)
    p = np.array(rh.points)
    p[:, 0] *= -1  # mirrored: faces reversed so that the normals still point outwards
    return brain, Shape(p, np.asarray(rh.faces)[:, ::-1].copy(), units="mm", name="rh mirrored")


def test_default_preset_on_two_hemispheres_does_not_fold_and_reports_its_energy(hemispheres):
    lh, rh = hemispheres
    reg = register(lh, rh)
    p = np.asarray(lh.points)
    lo, hi = p.min(0) - 5.0, p.max(0) + 5.0
    box = np.stack(np.meshgrid(*[np.linspace(lo[d], hi[d], 14) for d in range(3)], indexing="ij"), -1).reshape(-1, 3)
    det = jacobian_determinants(reg.deformation, np.vstack([p, box]), 1e-3 * reg.scale)
    after, before = reg.metrics["after"], reg.metrics["before"]
    print(f"det {det.min():.3f}..{det.max():.2f}, strain RMS {after['strain_rms']:.3f}, "
          f"non-rigid RMS {after['nonrigid_rms']:.2f} mm, Chamfer {before['chamfer_surface']:.2f} -> "
          f"{after['chamfer_surface']:.3f} mm, substeps {[h.substeps for h in reg.history if h.substeps is not None]}")
    assert det.min() > 0  # at every vertex and over the box around the shape
    assert after["folded"] == 0 and not folded_triangles(p, reg.warped.points, lh.faces, reg.deformation).any()
    assert after["jacobian_min"] > 0
    # the report's energy is that of the non-rigid part: positive, and its displacement RMS is
    # what separates the warped vertices from the pre-aligned ones
    pre = p @ reg.prealign[:3, :3].T + reg.prealign[:3, 3]
    assert after["nonrigid_rms"] == pytest.approx(np.sqrt(((reg.warped.points - pre) ** 2).sum(1).mean()), rel=1e-9)
    assert 0 < after["strain_rms"] <= after["strain_max"]
    # and it fits: 1.28 -> 0.91 mm at 2,000 vertices (edges ~7 mm; the two already overlap before)
    assert after["chamfer_surface"] < 0.85 * before["chamfer_surface"]
