"""register_many: many sources onto one target, one summary table, failures reported."""
from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from .conftest import write_subject


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, small_lh):
    from shapeot.shapes.synthetic import warp_pair

    root = tmp_path_factory.mktemp("cohort")
    tiny = small_lh.decimate(600)
    target = root / "target.gii"
    tiny.save(target)
    src = root / "sources"
    src.mkdir()
    for i in (1, 2):
        pair = warp_pair(tiny, i, amplitude=3.0, angle_deg=5.0, translation_mm=3.0, resample=False)
        write_subject(src / f"subj{i}", pair.truth, np.asarray(tiny.faces), overlays=False)
    (src / "broken.gii").write_bytes(b"<?xml version='1.0'?><GIFTI>truncated")
    return root, target, src


def _config():
    from shapeot.registration import RegistrationConfig

    return RegistrationConfig.from_preset("affine", engine={"backend": "torch"}, prealign={
        "starts": 1, "points": 200, "refine_points": 300, "iterations": 4, "blurs": (0.12,)})


@pytest.mark.parametrize("executor", [None, "dask-threads"])
def test_register_many_reports_failures_and_finishes(tmp_path, cohort, executor):
    from shapeot.deform.serialize import load_transform
    from shapeot.registration.batch import register_many
    from shapeot.shapes import load
    from shapeot.shapes.freesurfer import load_subject

    root, target, src = cohort
    client = None
    if executor == "dask-threads":
        distributed = pytest.importorskip("distributed")
        client = distributed.Client(distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                                             dashboard_address=None))
    seen = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = register_many(src, target, _config(), tmp_path / "out", executor=client,
                                progress=lambda f, m: seen.append(f) or True)
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            cluster.close()
    assert [r["subject"] for r in res.rows] == ["broken", "subj1", "subj2"]
    assert [r["status"] for r in res.rows] == ["failed", "ok", "ok"]
    assert "broken.gii" in res.rows[0]["error"]  # the failure names the file
    with open(res.summary_csv) as fh:
        table = list(csv.DictReader(fh))
    assert [t["status"] for t in table] == ["failed", "ok", "ok"]
    assert float(table[1]["after_chamfer_surface"]) < float(table[1]["before_chamfer_surface"])
    for name in ("subj1", "subj2"):
        warped = load(tmp_path / "out" / name / "warped.vtp")
        moved = load_transform(tmp_path / "out" / name / "transform.npz").apply(
            load_subject(src / name).points)
        np.testing.assert_allclose(warped.points, moved, atol=1e-4)
    assert seen and seen[-1] == pytest.approx(1.0)
    with pytest.raises(FileExistsError):
        register_many(src, target, _config(), tmp_path / "out")
