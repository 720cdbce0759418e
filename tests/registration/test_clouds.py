"""Point clouds of a smooth organ under a known warp (issue 16): the frog liver of the segmented
scan inside the pyvista wheel, its vertices alone (no faces), against the truth.

A cloud carries no surface areas, so balanced OT slides mass along the surface to make up the
two samplings' density differences; the non-rigid levels therefore use unbalanced OT on clouds
(``RegistrationConfig.cloud_reach``). Measured on this 1,500-point liver (2026-12-02): balanced
0.89 / 1.82 mm (mean / p95), with the cloud reach 0.54 / 1.01 mm, affine 1.44 / 3.28 mm.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from shapeot.registration import RegistrationConfig, register
from shapeot.registration.nonrigid import effective_reach

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _smooth_module():
    spec = importlib.util.spec_from_file_location("shapeot_bench_smooth", BENCHMARKS / "smooth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def liver_clouds():
    """(source cloud, target cloud, truth (N, 3), mean edge of the source mesh in mm)."""
    from shapeot.shapes import Shape

    smooth = _smooth_module()
    mesh = smooth.organ("liver", 1500)
    pair, _ = smooth.seeded_pair(mesh)  # benchmarks/smooth.py's warp: 0.12 and 0.5 of the diameter
    edge = smooth.mean_edge(mesh.points, mesh.faces)
    src = Shape(np.asarray(mesh.points), units="mm", name="liver cloud")
    tgt = Shape(np.asarray(pair.target.points), units="mm", name="liver cloud warped")
    return src, tgt, np.asarray(pair.truth), edge


def test_cloud_reach_applies_to_clouds_only():
    cfg = RegistrationConfig.from_preset("nonrigid")
    assert cfg.reach is None and cfg.cloud_reach == 0.2
    assert effective_reach(cfg, cloud=True) == 0.2 and effective_reach(cfg, cloud=False) is None
    assert effective_reach(cfg.replace(reach=0.5), cloud=True) == 0.5  # an explicit reach wins
    assert effective_reach(cfg.replace(cloud_reach=None), cloud=True) is None
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="cloud_reach"):
            cfg.replace(cloud_reach=bad)
    with pytest.raises(ValueError, match="reach"):
        cfg.replace(reach=float("nan"))


@pytest.mark.slow
def test_liver_cloud_nonrigid_beats_affine_against_the_truth(liver_clouds):
    src, tgt, truth, edge = liver_clouds
    errors = {}
    for preset in ("affine", "nonrigid"):
        reg = register(src, tgt, RegistrationConfig.from_preset(preset, compute_metrics=False))
        errors[preset] = np.linalg.norm(np.asarray(reg.warped.points) - truth, axis=1)
    stats = {k: (float(v.mean()), float(np.percentile(v, 95))) for k, v in errors.items()}
    print(stats, f"edge {edge:.2f} mm")
    (a_mean, a_p95), (n_mean, n_p95) = stats["affine"], stats["nonrigid"]
    assert n_mean < a_mean and n_p95 <= a_p95  # issue 16's goal on every case
    assert n_mean <= 0.35 * edge
    # today's level (balanced OT on clouds gave 0.89 / 1.82 mm: the guard fails without the reach)
    assert n_mean < 0.7 and n_p95 < 1.35, stats
