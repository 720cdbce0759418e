r"""Overlays through the correspondences: per-vertex values of the source onto the target's vertices.

The FreeSurfer tool ``mri_surf2surf`` resamples thickness or a parcellation from one subject's
surface onto another's through their spherical registration; here the correspondences of
:func:`shapeot.register` carry them.

With the final OT plan P (N source x M target vertices; ``Registration.correspondences.result.plan``
when the last step of the registration ran at full resolution), each target vertex j receives

* continuous values: the mass-weighted average :math:`\bar v_j = \sum_i P_{ij} v_i / \sum_i P_{ij}`
  (two products with the transposed plan, ``P^T [v, 1]``: never an N x M array);
* labels: the heaviest label among its ``k`` strongest partners, each partner voting with its
  mass P_ij (``P^T.top_k(k)``).

Without a plan (fine-tuning ran last, a linear preset, or a plan of cluster centres), the plan is
replaced by a Gaussian kernel on the warped source: the ``k`` warped source vertices nearest to
each target vertex (a k-d tree), weighted by exp(-d^2 / 2 s^2) times their vertex areas, s the
mean spacing of the warped source's vertices. Target vertices that the plan gives (almost) no
mass, which unbalanced OT may leave, use the same fallback.
"""
from __future__ import annotations

import numpy as np

from shapeot.shapes.overlays import Overlay

__all__ = ["transfer_overlay", "transfer_values", "transfer_with_map", "sample_values"]


def _plan_of(registration):
    """The (N source, M target) plan of the registration, with its transpose, or None."""
    corr = getattr(registration, "correspondences", None)
    result = getattr(corr, "result", None)
    plan = getattr(result, "plan", None)
    if plan is None:
        return None
    n, m = registration.source.n_points, registration.target.n_points
    if tuple(plan.shape) != (n, m):
        return None
    try:
        _ = plan.T  # raises when the plan has no transpose attached
    except ValueError:
        return None
    return plan


def _kernel_partners(warped: np.ndarray, weights: np.ndarray, target: np.ndarray, k: int):
    """(indices (M, k), weights (M, k)) of each target point's nearest warped source points."""
    from scipy.spatial import cKDTree

    tree = cKDTree(warped)
    k = int(min(k, len(warped)))
    spacing = float(tree.query(warped, k=2)[0][:, 1].mean()) if len(warped) > 1 else 1.0
    d, idx = tree.query(target, k=k)
    if k == 1:
        d, idx = d[:, None], idx[:, None]
    s = max(spacing, 1e-12)
    w = np.exp(-0.5 * (d / s) ** 2) * weights[idx]
    # a target point far from every warped vertex still gets its nearest one
    w[:, 0] = np.maximum(w[:, 0], 1e-300)
    return idx, w


def _vote(labels: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """(M,) the label with the largest total mass among each row's candidates (ties: strongest first)."""
    same = labels[:, :, None] == labels[:, None, :]  # (M, k, k)
    score = (same * mass[:, None, :]).sum(2)  # (M, k): total mass of the label of candidate c
    return labels[np.arange(len(labels)), np.argmax(score, axis=1)]


def transfer_values(values: np.ndarray, registration, *, kind: str = "continuous", k: int = 8,
                    use_plan: bool = True) -> tuple[np.ndarray, str]:
    """Values on the source's vertices -> values on the target's vertices (see the module docstring).

    Parameters
    ----------
    values : (N,) or (N, c) array
        One row per source vertex.
    registration : Registration
    kind : {"continuous", "labels"}
    k : int, default: 8
        Partners per target vertex for label votes and for the kernel fallback.
    use_plan : bool, default: True
        False always uses the kernel on the warped source.

    Returns
    -------
    (values (M,) or (M, c), method): method is "plan", "plan+kernel" (some target vertices
    without plan mass used the kernel) or "kernel".
    """
    import torch

    v = np.asarray(values)
    n, m = registration.source.n_points, registration.target.n_points
    if len(v) != n:
        raise ValueError(f"{len(v)} values for a source of {n} vertices")
    two_d = v.ndim == 2
    cols = v.reshape(n, -1)
    plan = _plan_of(registration) if use_plan else None
    target_pts = np.asarray(registration.target.points)
    warped = np.asarray(registration.warped.points)
    src_w = np.asarray(registration.source.weights)
    need_kernel = np.ones(m, dtype=bool)
    out = np.zeros((m, cols.shape[1]), dtype=np.float64 if kind == "continuous" else np.int64)
    method = "kernel"
    if plan is not None:
        pt = plan.T  # (M, N): target vertices receive
        dtype = pt._f.dtype if hasattr(pt, "_f") else torch.float64
        if kind == "continuous":
            rhs = torch.as_tensor(np.column_stack([cols.astype(np.float64), np.ones(n)]), dtype=dtype)
            got = pt.matvec(rhs).cpu().numpy().astype(np.float64)  # (M, c + 1)
            mass = got[:, -1]
            ok = np.isfinite(got).all(1) & (mass > 1e-9 * max(float(np.nanmax(mass)), 1e-300))
            out[ok] = got[ok, :-1] / mass[ok, None]
        else:
            kk = int(min(k, n))
            idx, w = pt.top_k(kk)
            idx, w = idx.cpu().numpy(), w.cpu().numpy().astype(np.float64)
            total = w.sum(1)
            ok = np.isfinite(total) & (total > 1e-9 * max(float(np.nanmax(total)), 1e-300))
            for c in range(cols.shape[1]):
                out[ok, c] = _vote(cols[idx[ok], c], w[ok])
        need_kernel = ~ok
        method = "plan" if not need_kernel.any() else "plan+kernel"
    if need_kernel.any():
        idx, w = _kernel_partners(warped, src_w, target_pts[need_kernel], k)
        if kind == "continuous":
            out[need_kernel] = np.einsum("mk,mkc->mc", w, cols[idx].astype(np.float64)) / w.sum(1)[:, None]
        else:
            for c in range(cols.shape[1]):
                out[need_kernel, c] = _vote(cols[idx, c], w)
    return (out if two_d else out[:, 0]), method


def transfer_overlay(overlay: Overlay, registration, *, k: int = 8, use_plan: bool = True) -> Overlay:
    """An overlay of the registration's source resampled onto its target's vertices.

    Continuous overlays (thickness, curvature, GIfTI maps) get the mass-weighted average of the
    transport plan; label overlays (``.annot``, ``.label``, GIfTI label arrays) the heaviest
    label of the strongest partners (module docstring). The result keeps the overlay's name,
    kind, label names and colours and its format, so :func:`shapeot.shapes.overlays.write_overlay`
    writes it back in the input's own format; ``meta["transfer"]`` records the method used.

    Parameters
    ----------
    overlay : Overlay
        On the source: one row per source vertex (checked).
    registration : Registration
        From :func:`shapeot.register` (source -> target).
    k : int, default: 8
        Partners per target vertex for label votes and the kernel fallback.
    use_plan : bool, default: True

    Returns
    -------
    Overlay
        One row per target vertex.
    """
    overlay.check_vertices(registration.source.n_points)
    values, method = transfer_values(overlay.values, registration, kind=overlay.kind, k=k, use_plan=use_plan)
    meta = {key: val for key, val in overlay.meta.items() if key != "scalars"}  # .label scalars: per source vertex
    meta["transfer"] = {"method": method, "from": registration.source.name, "to": registration.target.name,
                        "k": int(k)}
    return overlay.replace(values=values, source=None, meta=meta)


def transfer_with_map(overlay: Overlay, source, target, deformation, *, k: int = 8) -> Overlay:
    """An overlay of ``source`` resampled onto ``target``'s vertices through a map alone (a saved
    transform: no plan), as FreeSurfer's ``mri_surf2surf`` does through a sphere: each target
    vertex takes the values of the warped source vertices nearest to it (the module docstring's
    kernel). ``shapeot transfer`` and ``shapeot register --overlay`` both resample this way, so
    an overlay made after the registration moves exactly as one given to it.

    Parameters
    ----------
    overlay : Overlay
        One row per source vertex (checked).
    source, target : Shape
        The surfaces the map was computed between (or others of the same subjects, in the same
        spaces: ``lh.white`` for a map computed on ``lh.pial``).
    deformation : a map with ``.apply(points)`` (RAS mm), source -> target.
    k : int, default: 8
    """
    from types import SimpleNamespace

    warped = source.with_points(np.asarray(deformation.apply(np.asarray(source.points))), weights=source.weights)
    mapped = SimpleNamespace(source=source, target=target, warped=warped, correspondences=None)
    return transfer_overlay(overlay, mapped, k=k, use_plan=False)


def sample_values(values: np.ndarray, surface, at: np.ndarray, *, kind: str = "continuous", k: int = 8) -> np.ndarray:
    """Values on ``surface``'s vertices (N,) or (N, c), read at any points ``at`` (M, 3) lying on
    or near it: the kernel of the module docstring (the ``k`` nearest vertices, Gaussian weights
    at the surface's spacing times their areas); labels by the heaviest vote."""
    v = np.asarray(values)
    cols = v.reshape(len(v), -1)
    idx, w = _kernel_partners(np.asarray(surface.points), np.asarray(surface.weights), np.asarray(at), k)
    if kind == "continuous":
        out = np.einsum("mk,mkc->mc", w, cols[idx].astype(np.float64)) / w.sum(1)[:, None]
    else:
        out = np.stack([_vote(cols[idx, c], w) for c in range(cols.shape[1])], axis=1)
    return out if v.ndim == 2 else out[:, 0]
