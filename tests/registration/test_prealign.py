"""The pre-alignment's refinement on a smooth shape: Anderson-accelerated rounds, stopped when the
OT value stalls, recover a known affine map from two independent samplings of an ellipsoid."""
from __future__ import annotations

import numpy as np

from shapeot.deform import LinearMap
from shapeot.registration import RegistrationConfig, register
from shapeot.registration.prealign import _Anderson
from shapeot.shapes import Shape


def _ellipsoid(n: int, seed: int) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True) * [30.0, 20.0, 12.0]  # mm


def test_affine_prealign_of_a_smooth_shape_is_accurate_and_stops_early():
    a = np.array([[1.08, 0.06, 0.0], [-0.04, 0.95, 0.05], [0.03, 0.0, 1.04]])
    src = _ellipsoid(3000, 0)
    tgt = _ellipsoid(3000, 1) @ a.T + [4.0, -3.0, 6.0]  # another sampling, mapped by the truth
    cfg = RegistrationConfig.from_preset("affine", compute_metrics=False, prealign={"starts": 1})
    reg = register(Shape(src, None, units="mm"), Shape(tgt, None, units="mm"), cfg)
    truth = src @ a.T + [4.0, -3.0, 6.0]
    err = np.linalg.norm(reg.warped.points - truth, axis=1)
    refine = [h for h in reg.history if h.stage == "prealign" and h.phase == "refine"]
    assert len([h for h in reg.history if h.phase == "search"]) == len(cfg.prealign.blurs)
    print(f"vertex error mean {err.mean():.3f} max {err.max():.3f} mm, {len(refine)} refinement rounds")
    # 0.79 / 1.40 mm after all 18 plain rounds (2026-12-02); the last blur is 0.7 mm and the
    # samplings are ~1.5 mm apart
    assert err.mean() < 1.0 and err.max() < 2.0
    assert len(refine) < cfg.prealign.iterations  # some blur was left early


def test_anderson_step_reaches_the_fixed_point_of_a_linear_contraction():
    """A fixed point m* = G(m) with G contracting slowly (0.9 per step, as on smooth shapes): plain
    steps leave 0.9^k of the error, the accelerated ones solve it in a few."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    w = np.full(200, 1 / 200)
    star = np.eye(4)
    star[:3, :3] += 0.1 * rng.normal(size=(3, 3))
    star[:3, 3] = [0.3, -0.2, 0.1]

    def g(m: LinearMap) -> LinearMap:  # moves m 10 % of the way to m*
        return LinearMap(m.matrix + 0.1 * (star - m.matrix))

    acc, m = _Anderson(x, w, "affine"), LinearMap.identity()
    values = []
    for _ in range(6):
        value = float(np.abs(m.matrix - star).sum())  # a stand-in objective, decreasing towards m*
        values.append(value)
        m = acc.next(m, g(m), value)
    assert np.abs(m.matrix - star).max() < 1e-6  # plain steps: 0.9^6 = 53 % of the error left
