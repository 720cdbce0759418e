"""Warnings of the OT engine, and the thresholds that raise them.

Both are ``RuntimeWarning`` subclasses, so a caller can silence or escalate them by category::

    warnings.simplefilter("error", ConvergenceWarning)
"""
from __future__ import annotations

import contextlib
import warnings

# A returned plan whose relative L1 marginal error, marginal_error / (|a'| + |b'|), exceeds this
# raises a ConvergenceWarning (0.05: the plan moves 5 % of the mass to the wrong place, so its
# barycentric maps are visibly biased). Balanced OT: |a'| + |b'| = 2.
MARGINAL_WARN = 0.05

# float32 inputs with blur above this multiple of the clouds' diameter are solved in float64:
# the kernel exp(-C/eps) is then within 1 - 1/8 of 1 everywhere, and float32 log-sum-exps
# lose the value to round-off (measured: 2e-4 relative error at 3 diameters, 1 % at 30, the
# value exactly 0.0 at 1000).
PROMOTE_BLUR_OVER_DIAMETER = 2.0

# float32 coordinates whose magnitude makes their spacing (half an ulp) larger than this
# fraction of the clouds' diameter have already lost precision: a PrecisionWarning says so.
COORDINATE_QUANTUM = 1e-4


class ConvergenceWarning(RuntimeWarning):
    """The Sinkhorn iterations stopped far from convergence: the plan's marginals are off by
    more than ``MARGINAL_WARN`` (relative L1). The value is usually still accurate (debiasing
    and the envelope theorem); maps and correspondences read off the plan are biased. Pass
    ``tol=`` (extra iterations at the final blur, within ``max_iter``) or a scaling closer to 1."""


class PrecisionWarning(RuntimeWarning):
    """float32 cannot represent the problem well (coordinates far from the origin relative to
    their spread); centre the points before converting them to float32, or pass float64."""


@contextlib.contextmanager
def quiet_convergence():
    """Silence :class:`ConvergenceWarning` inside the block: for pipelines whose plans are steps
    of a fixed point, not final answers (registration rounds, Procrustes rounds, fine-tuning),
    which record the marginal error themselves instead of warning at every round."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield

