"""shapeot.deform: deformation models, each with ``.apply(points)`` (arrays, mm) and
``.transform(x)`` (differentiable torch tensors).

* :class:`LinearMap` and :func:`fit_linear`: rigid / similarity (Umeyama 1991) and affine maps;
* :class:`KernelSpline` and :func:`smooth_displacement`: Gaussian kernel displacement fields;
* :class:`LDDMM`: geodesic shooting from control points and momenta (diffeomorphic);
* :class:`Composition`: one map after another.
"""
from .compose import Composition, Deformation
from .lddmm import LDDMM, hamiltonian, shoot
from .linear import LINEAR_KINDS, LinearMap, fit_linear
from .spline import KernelSpline, smooth_displacement

__all__ = ["LinearMap", "fit_linear", "LINEAR_KINDS", "KernelSpline", "smooth_displacement", "LDDMM",
           "hamiltonian", "shoot", "Composition", "Deformation"]
