"""Cancel reaches inside the long stages: the OT solve, the non-rigid rounds, the metrics."""
import time

import numpy as np
import pytest
import torch

import shapeot
from shapeot.core.errors import Cancelled
from shapeot.ot import solve


def test_solve_stops_at_the_next_iteration_when_progress_says_false():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(500, 3, generator=g), torch.rand(400, 3, generator=g)
    calls = []

    def progress(fraction, message):
        calls.append(fraction)
        return len(calls) < 3

    with pytest.raises(Cancelled):
        solve(x, y, blur=0.01, scaling=0.9, progress=progress)
    assert len(calls) == 3  # the third call said False: no iteration ran after it
    full = []
    solve(x, y, blur=0.01, scaling=0.9, progress=lambda f, m: full.append(f))
    assert len(full) > 20 and full[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("stage", ["OT match", "smoothing", "measuring"])
def test_register_cancels_inside_a_stage(stage):
    lh = shapeot.load("sample_meshes/fsaverage5_lh_pial.gii").decimate(1500)
    rh = lh.with_points(lh.points * np.array([-1.0, 1.0, 1.0]) + np.array([2.0, 0.0, 0.0]))
    seen = []

    def progress(fraction, message):
        seen.append(message)
        return stage not in message

    t = time.perf_counter()
    with pytest.raises(Cancelled):
        shapeot.register(lh, rh, shapeot.RegistrationConfig.from_preset("nonrigid"), progress=progress)
    assert any(stage in m for m in seen)
    assert seen[-1].endswith(stage) or stage in seen[-1]
    assert time.perf_counter() - t < 120  # it stopped, it did not run to the end and then raise
