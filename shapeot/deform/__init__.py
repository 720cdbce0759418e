"""shapeot.deform: deformation models, each with ``.apply(points)`` (arrays, mm) and
``.transform(x)`` (differentiable torch tensors).

* :class:`LinearMap` and :func:`fit_linear`: rigid / similarity (Umeyama 1991) and affine maps;
* :class:`KernelSpline` and :func:`smooth_displacement`: Gaussian kernel displacement fields;
* :class:`LDDMM`: geodesic shooting from control points and momenta (diffeomorphic);
* :class:`Composition`: one map after another.
"""
from .compose import Composition, Deformation
from .itk import export_itk
from .lddmm import LDDMM, hamiltonian, shoot
from .linear import LINEAR_KINDS, LinearMap, fit_linear
from .serialize import apply_transform, load_transform, register_model, save_transform
from .spline import KernelSpline, max_strain, smooth_displacement

__all__ = ["LinearMap", "fit_linear", "LINEAR_KINDS", "KernelSpline", "smooth_displacement", "max_strain", "LDDMM",
           "hamiltonian", "shoot", "Composition", "Deformation", "save_transform", "load_transform", "apply_transform",
           "register_model", "export_itk"]
