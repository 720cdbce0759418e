"""Cancel reaches inside the long stages: the OT solve, the non-rigid rounds, the metrics."""
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
        seen.append((fraction, message))
        return stage not in message

    with pytest.raises(Cancelled, match=stage):
        shapeot.register(lh, rh, shapeot.RegistrationConfig.from_preset("nonrigid"), progress=progress)
    messages = [m for _, m in seen]
    # It stopped at the stage's first report (the one that said False): nothing was reported after
    # it, no later stage ran and the run did not reach its end ("done") before raising.
    assert stage in messages[-1]
    assert sum(stage in m for m in messages) == 1, messages[-5:]
    assert "done" not in messages
    assert max(f for f, _ in seen) < 1.0
