"""Independent yardsticks for templates: rigid ICP (trimesh) + point-to-surface distances, and
the generator's mode with the Procrustes group projected out."""
from __future__ import annotations

import numpy as np


def rigid_icp(shape, reference, n_points: int = 800) -> np.ndarray:
    """4x4 rigid map of ``shape`` onto ``reference``'s surface by trimesh's ICP (closest points on
    the triangles) on ``n_points`` seeded random vertices, started from the identity: an
    alignment that shares no code with shapeot."""
    import trimesh

    pts = np.asarray(shape.points)
    pick = np.random.default_rng(0).choice(len(pts), size=min(n_points, len(pts)), replace=False)
    mesh = trimesh.Trimesh(np.asarray(reference.points), np.asarray(reference.faces), process=False)
    matrix, _, _ = trimesh.registration.icp(pts[pick], mesh, max_iterations=30, threshold=1e-5, scale=False)
    return matrix


def surface_distance(shape, reference, n_points: int = 800) -> tuple[float, float]:
    """(symmetric mean point-to-surface distance, HD95) in mm after a rigid ICP alignment."""
    from shapeot.metrics import chamfer, hd95

    m = rigid_icp(shape, reference, n_points)
    moved = shape.with_points(np.asarray(shape.points) @ m[:3, :3].T + m[:3, 3])
    return chamfer(moved, reference, surface=True), hd95(moved, reference, surface=True)


def without_similarities(field: np.ndarray, points: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """``field`` (N, 3) minus its area-weighted least-squares projection on the infinitesimal
    similarities at ``points`` (3 translations, 3 rotations, 1 scaling): what a (similarity)
    Procrustes alignment leaves of a displacement field."""
    a = np.asarray(areas) / np.sum(areas)
    q = points - a @ points
    basis = [np.tile(e, (len(points), 1)) for e in np.eye(3)] + [np.cross(e, q) for e in np.eye(3)] + [q]
    b = np.stack([v.reshape(-1) for v in basis], 1)
    wt = np.repeat(a, 3)
    coef = np.linalg.solve(b.T @ (wt[:, None] * b), b.T @ (wt * field.reshape(-1)))
    return (field.reshape(-1) - b @ coef).reshape(-1, 3)


def cosine(u: np.ndarray, v: np.ndarray, areas: np.ndarray) -> float:
    """|<u, v>| / (|u| |v|) for the area-weighted inner product of (N, 3) fields."""
    a = np.asarray(areas)[:, None]
    return float(abs((a * u * v).sum()) / np.sqrt((a * u * u).sum() * (a * v * v).sum()))
