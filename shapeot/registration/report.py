"""Metrics of a registration, before and after (see ``Registration.metrics``)."""
from __future__ import annotations

import numpy as np

from shapeot.metrics import distance_summary, error_summary, jacobians, target_registration_errors, warp_summary

__all__ = ["registration_metrics", "warp_advice"]

_JACOBIAN_SAMPLES = 2000  # source vertices where the 3D Jacobian is sampled (6 extra map evaluations)


def _distances(a, b, check=lambda: None) -> dict:
    return {k: v for k, v in distance_summary(a, b, check)._asdict().items() if v is not None}


def registration_metrics(source, target, warped, deformation, marks, moved_marks, scale: float,
                         check=lambda what: None, prealign: np.ndarray | None = None) -> dict:
    """``{"before": {...}, "after": {...}}`` (mm, unitless ratios), JSON-ready floats.

    before / after: chamfer, hausdorff, hd95 (point-to-point) and their ``*_surface``
    (point-to-surface) counterparts; tre_mean, tre_max (landmarks). after also: area_ratio_min,
    area_ratio_max, area_ratio_p01, area_ratio_p99, folded, folded_fraction (meshes), and
    jacobian_min, jacobian_max: det D phi at up to 2000 source vertices (finite differences);
    with the 4x4 ``prealign`` (source -> target, mm), the energy of the non-rigid part
    psi = phi o P^-1 (P the pre-alignment): ``strain_rms`` = sqrt(mean |D psi - I|_F^2) over
    the same samples (unitless: 0 for a linear registration; the membrane / Dirichlet energy of
    the displacement, which any smooth model has, LDDMM or splines), ``strain_max`` (largest
    |D psi - I|_2: above 1 the map could fold there) and ``nonrigid_rms`` (mm, RMS of
    phi(x) - P x over the vertices).
    ``check(what)`` is called between the parts (it raises to cancel).
    """
    check("distances before")
    before = _distances(source, target, lambda: check("distances before"))
    check("distances after")
    after = _distances(warped, target, lambda: check("distances after"))
    check("warp statistics")
    if marks is not None:
        for d, lm in ((before, marks[0]), (after, moved_marks)):
            s = error_summary(target_registration_errors(lm, marks[1]))
            d.update(tre_mean=s.mean, tre_max=s.max)
    if source.faces is not None and len(source.faces):
        after.update(warp_summary(source.points, warped.points, source.faces, deformation, 1e-3 * scale)._asdict())
    pts = np.asarray(source.points)
    if len(pts) > _JACOBIAN_SAMPLES:
        pts = pts[np.linspace(0, len(pts) - 1, _JACOBIAN_SAMPLES).astype(np.int64)]
    jac = jacobians(deformation, pts, step=1e-3 * scale)
    det = np.linalg.det(jac)
    after.update(jacobian_min=float(det.min()), jacobian_max=float(det.max()))
    if prealign is not None:
        a = np.asarray(prealign, dtype=np.float64)
        strain = jac @ np.linalg.inv(a[:3, :3]) - np.eye(3)  # D psi - I, with D phi = D psi(P x) A
        nonrigid = np.asarray(warped.points) - (np.asarray(source.points) @ a[:3, :3].T + a[:3, 3])
        after.update(strain_rms=float(np.sqrt((strain ** 2).sum((1, 2)).mean())),
                     strain_max=float(np.linalg.norm(strain, ord=2, axis=(1, 2)).max()),
                     nonrigid_rms=float(np.sqrt((nonrigid ** 2).sum(1).mean())))
    return {"before": before, "after": after}


def warp_advice(after: dict) -> str | None:
    """One sentence for the user when the warp or its mesh turned over, else None.

    ``after`` is ``Registration.metrics["after"]``. Two cases differ in what to do: det D phi
    <= 0 at a sampled vertex (``jacobian_min``) means the map itself turns space over there;
    triangles turned over (``folded``) while det D phi > 0 everywhere sampled means the map is
    invertible but too curved for the mesh's triangles, whose linear interpolation cannot follow
    it (the diffeomorphic preset on the coarse sample-cohort pair: 3 of 5,000 triangles with
    edges up to twice the mean, none once the source is Loop-subdivided; docs/registration.md).
    """
    det, folded = after.get("jacobian_min"), int(after.get("folded") or 0)
    if det is not None and det <= 0:
        return (f"the warp turns space over (Jacobian determinant down to {det:.3g} at the sampled vertices): "
                "it is not invertible there; use the nonrigid or diffeomorphic preset, wider kernels (Level.width) "
                "or check that the two shapes correspond")
    if folded > 0:
        return (f"{folded} triangle{'s' if folded > 1 else ''} turned over although the warp is invertible where "
                "sampled (Jacobian determinant > 0): the mesh is too coarse for this warp's curvature; subdivide "
                "the source (e.g. trimesh.remesh.subdivide_loop) and register again")
    return None
