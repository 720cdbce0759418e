r"""shapeot.ot: the optimal-transport engine. Tensors in, tensors out; it knows nothing of meshes.

Conventions: cost C(x, y) = |x - y|^2 / 2 (p = 2), eps = blur^2, rho = reach^2; blur and reach in
the units of the points; weights sum to 1 for balanced OT.

>>> from shapeot.ot import solve, available_backends
"""
from .backends import available_backends
from .reductions import softmin
from .result import OTResult, TransportPlan
from .sinkhorn import solve

__all__ = ["solve", "available_backends", "softmin", "OTResult", "TransportPlan"]
