"""Warnings of the OT engine, and the thresholds that raise them.

Both are ``RuntimeWarning`` subclasses, so a caller can silence or escalate them by category::

    warnings.simplefilter("error", ConvergenceWarning)
"""
from __future__ import annotations

# The default ``tol`` of solve: its iterations go on until the plan's relative L1 marginal error,
# marginal_error / (|a'| + |b'|), is below this (0.05: a plan that moves more than 5 % of the mass
# to the wrong place has visibly biased barycentric maps). Balanced OT: |a'| + |b'| = 2.
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
    """The Sinkhorn iterations stopped before the plan's marginals were within the requested
    ``tol`` (relative L1): ``max_iter`` ran out. Maps and correspondences read off the plan are
    biased. Raise ``max_iter``, or use a scaling closer to 1 or a larger blur."""


class PrecisionWarning(RuntimeWarning):
    """float32 cannot represent the problem well (coordinates far from the origin relative to
    their spread); centre the points before converting them to float32, or pass float64."""
