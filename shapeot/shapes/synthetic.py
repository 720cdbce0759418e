r"""Known smooth deformations of real surfaces: the ground truth for registration and templates.

A random diffeomorphism is the flow, at time 1, of a smooth stationary velocity field

.. math::

    v(x) = \sum_{k=1}^{K} \exp\!\left(-\frac{|x - c_k|^2}{2\sigma^2}\right) a_k ,
    \qquad \dot x(t) = v(x(t)),\ x(0) = x ,

with centres :math:`c_k` drawn on the shape, Gaussian random vectors :math:`a_k` (mm) and a
kernel width :math:`\sigma` (mm). The flow of a smooth, Lipschitz field is a diffeomorphism, and
its inverse is the flow of :math:`-v`; RK4 with a few steps integrates it accurately for the
amplitudes used here (max |v| well below :math:`\sigma`). A rigid motion (rotation about the
shape's centroid, then a translation) is composed after the flow.

:func:`make_cohort` can also move subjects by the field itself, :math:`x \pm u(x)`
(``pairs="linear"``, :class:`LinearDisplacement`), so that the reference is the exact mean of a
pair, and can add bumps and dents along the surface's normals (``normal_amplitude``), which
surface distances see where tangential slides are invisible to them.

Everything is seeded: the same arguments give the same shapes on every machine (up to the
decimation in :func:`resample_surface`, which uses VTK when installed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .shape import Shape

__all__ = [
    "VelocityFlow",
    "LinearDisplacement",
    "RigidMotion",
    "KnownWarp",
    "WarpPair",
    "Cohort",
    "random_diffeomorphism",
    "random_rigid",
    "resample_surface",
    "warp_pair",
    "make_cohort",
]


@dataclass(frozen=True)
class VelocityFlow:
    """Flow at time 1 of a Gaussian-kernel velocity field (see the module docstring).

    Attributes
    ----------
    centres : (K, 3) float array
        Kernel centres c_k (mm).
    vectors : (K, 3) float array
        Kernel vectors a_k (mm per unit time).
    width : float
        Kernel standard deviation sigma (mm).
    n_steps : int
        RK4 steps from t = 0 to t = 1.
    """

    centres: np.ndarray
    vectors: np.ndarray
    width: float
    n_steps: int = 10

    def velocity(self, points: np.ndarray) -> np.ndarray:
        """v(x) at (M, 3) points (mm); returns (M, 3) mm per unit time."""
        d2 = ((points[:, None, :] - self.centres[None, :, :]) ** 2).sum(-1)  # (M, K)
        return np.exp(-d2 / (2.0 * self.width**2)) @ self.vectors  # (M, K) @ (K, 3)

    def jacobian(self, points: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """dv/dx at (M, 3) points: (M, 3, 3), row i the gradient of v_i (dimensionless)."""
        pts = np.asarray(points, dtype=np.float64)
        out = np.empty((len(pts), 3, 3))
        for start in range(0, len(pts), chunk):
            diff = pts[start:start + chunk, None, :] - self.centres[None, :, :]  # (m, K, 3)
            g = np.exp(-(diff**2).sum(-1) / (2.0 * self.width**2))  # (m, K)
            # d/dx g_k(x) a_k = -g_k a_k (x - c_k)^T / sigma^2
            out[start:start + chunk] = -np.einsum("mk,ki,mkj->mij", g, self.vectors, diff) / self.width**2
        return out

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Move (M, 3) points (mm) along the flow for unit time (RK4); returns (M, 3) mm."""
        x = np.array(points, dtype=np.float64)
        h = 1.0 / self.n_steps
        for _ in range(self.n_steps):
            k1 = self.velocity(x)
            k2 = self.velocity(x + 0.5 * h * k1)
            k3 = self.velocity(x + 0.5 * h * k2)
            k4 = self.velocity(x + h * k3)
            x += h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x

    def inverse(self) -> VelocityFlow:
        """The flow of -v: the inverse diffeomorphism (up to the integration error)."""
        return VelocityFlow(self.centres, -self.vectors, self.width, self.n_steps)

    def scaled(self, factor: float) -> VelocityFlow:
        """The flow of factor * v."""
        return VelocityFlow(self.centres, factor * self.vectors, self.width, self.n_steps)


@dataclass(frozen=True)
class LinearDisplacement:
    """x -> x + u(x), with u(x) = v(x) - (offset + matrix (x - centre)): the velocity field of a
    :class:`VelocityFlow` used as a displacement, less an affine field (in
    :func:`make_cohort`, the field's area-weighted least-squares infinitesimal similarity).

    A diffeomorphism where det(I + du/dx) > 0 (:meth:`min_jacobian`); :func:`make_cohort`
    checks it at the shape's points. Its negation (:meth:`negated`) is x -> x - u(x), so a pair
    averages exactly to the identity.

    Attributes
    ----------
    field : VelocityFlow
        The kernel field v (its ``vectors`` in mm).
    matrix : (3, 3) float array
        Linear part removed from v (dimensionless).
    offset : (3,) float array
        Constant part removed from v (mm).
    centre : (3,) float array
        Origin of the linear part (mm).
    """

    field: VelocityFlow
    matrix: np.ndarray
    offset: np.ndarray
    centre: np.ndarray

    @property
    def width(self) -> float:
        """Kernel width of the field (mm)."""
        return self.field.width

    def displacement(self, points: np.ndarray) -> np.ndarray:
        """u at (M, 3) points (mm); returns (M, 3) mm."""
        x = np.asarray(points, dtype=np.float64)
        return self.field.velocity(x) - self.offset - (x - self.centre) @ self.matrix.T

    def apply(self, points: np.ndarray) -> np.ndarray:
        """x + u(x) for (M, 3) points (mm); returns (M, 3) mm."""
        x = np.asarray(points, dtype=np.float64)
        return x + self.displacement(x)

    def negated(self) -> LinearDisplacement:
        """x -> x - u(x)."""
        return LinearDisplacement(self.field.scaled(-1.0), -self.matrix, -self.offset, self.centre)

    def min_jacobian(self, points: np.ndarray) -> float:
        """Smallest det(I + du/dx) over (M, 3) points: <= 0 where the map folds."""
        jac = np.eye(3) + self.field.jacobian(points) - self.matrix
        return float(np.linalg.det(jac).min())

    @classmethod
    def without_similarity(cls, field: VelocityFlow, points: np.ndarray, weights: np.ndarray) -> LinearDisplacement:
        """The field less its weighted least-squares infinitesimal similarity at ``points``
        (translation t, rotation omega, scaling s: t + omega x (x - c) + s (x - c), c the
        weighted centroid): what is left cannot be undone by a similarity to first order."""
        pts = np.asarray(points, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        w = w / w.sum()
        c = w @ pts
        q = pts - c
        basis = [np.tile(e, (len(pts), 1)) for e in np.eye(3)] + [np.cross(e, q) for e in np.eye(3)] + [q]
        b = np.stack([v.reshape(-1) for v in basis], 1)  # (3N, 7)
        wt = np.repeat(w, 3)
        coef = np.linalg.solve(b.T @ (wt[:, None] * b), b.T @ (wt * field.velocity(pts).reshape(-1)))
        t, omega, scale = coef[:3], coef[3:6], coef[6]
        cross = np.array([[0.0, -omega[2], omega[1]], [omega[2], 0.0, -omega[0]], [-omega[1], omega[0], 0.0]])
        return cls(field, cross + scale * np.eye(3), t, c)


@dataclass(frozen=True)
class RigidMotion:
    """x -> R (x - centre) + centre + translation.

    Attributes
    ----------
    rotation : (3, 3) float array
        A rotation matrix (det +1).
    translation : (3,) float array
        Translation (mm).
    centre : (3,) float array
        Centre of rotation (mm).
    """

    rotation: np.ndarray
    translation: np.ndarray
    centre: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Move (M, 3) points (mm); returns (M, 3) mm."""
        return (np.asarray(points) - self.centre) @ self.rotation.T + self.centre + self.translation

    def inverse(self) -> RigidMotion:
        """The inverse motion."""
        rt = self.rotation.T
        # x = R^T (y - c - t) + c = R^T (y - c) + c - R^T t
        return RigidMotion(rt, -rt @ self.translation, self.centre)

    def matrix(self) -> np.ndarray:
        """The 4x4 homogeneous matrix of the motion (acting on column vectors, mm)."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.centre + self.translation - self.rotation @ self.centre
        return m


@dataclass(frozen=True)
class KnownWarp:
    """A ground-truth map: a velocity flow (or a :class:`LinearDisplacement`) followed by a
    rigid motion (either may be None)."""

    flow: VelocityFlow | LinearDisplacement | None = None
    rigid: RigidMotion | None = None

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map (M, 3) points (mm) through the flow, then the rigid motion; returns (M, 3)."""
        x = np.asarray(points, dtype=np.float64)
        if self.flow is not None:
            x = self.flow.apply(x)
        if self.rigid is not None:
            x = self.rigid.apply(x)
        return x


class WarpPair(NamedTuple):
    """Result of :func:`warp_pair`.

    target : Shape
        The warped (and, by default, resampled) surface.
    truth : (N, 3) float array
        Where each vertex of the source lands (mm): the correspondence a registration of the
        source onto ``target`` should find.
    warp : KnownWarp
        The map itself, to move any other points (landmarks, grids).
    """

    target: Shape
    truth: np.ndarray
    warp: KnownWarp


@dataclass(frozen=True)
class Cohort:
    """Result of :func:`make_cohort`.

    Attributes
    ----------
    reference : Shape
        The surface every subject was made from; the cohort's true mean.
    subjects : list of Shape
        The subjects (resampled: their vertices do not correspond to the reference's).
    truths : list of (N, 3) float arrays
        For each subject, where each reference vertex lands (mm).
    warps : list of KnownWarp
        The maps reference -> subject.
    mode : (N, 3) float array
        The shared velocity field evaluated at the reference vertices (less its similarity
        part for ``pairs="linear"``), normalised to max norm 1 (the direction of the dominant
        mode); zeros if there is no mode.
    mode_scores : (S,) float array
        Each subject's signed amplitude along the mode (mm).
    """

    reference: Shape
    subjects: list[Shape]
    truths: list[np.ndarray]
    warps: list[KnownWarp]
    mode: np.ndarray
    mode_scores: np.ndarray
    parameters: dict = field(default_factory=dict)


def _points(shape_or_points: Shape | np.ndarray) -> np.ndarray:
    if isinstance(shape_or_points, Shape):
        return np.asarray(shape_or_points.points)
    return np.asarray(shape_or_points, dtype=np.float64)


def random_diffeomorphism(
    shape: Shape | np.ndarray,
    *,
    amplitude: float = 10.0,
    width: float | None = None,
    n_centres: int = 24,
    n_steps: int = 10,
    seed: int | np.random.Generator = 0,
) -> VelocityFlow:
    """A random smooth diffeomorphism of a shape's neighbourhood (a velocity flow).

    Parameters
    ----------
    shape : Shape or (N, 3) float array
        Where the deformation acts; kernel centres are drawn among its points.
    amplitude : float, default: 10.0
        Largest velocity |v(x)| over the shape's points (mm); the largest displacement of the
        flow is about this.
    width : float or None, default: None
        Kernel width sigma (mm); None means a fifth of the shape's diameter. Keep
        ``amplitude`` below ``width`` for a well-conditioned diffeomorphism.
    n_centres : int, default: 24
        Number of kernels K.
    n_steps : int, default: 10
        RK4 integration steps.
    seed : int or numpy Generator, default: 0

    Returns
    -------
    VelocityFlow
    """
    from .geometry import diameter

    rng = np.random.default_rng(seed)
    pts = _points(shape)
    if width is None:
        width = 0.2 * diameter(pts)
    centres = pts[rng.choice(len(pts), size=min(n_centres, len(pts)), replace=False)]
    vectors = rng.standard_normal((len(centres), 3))
    flow = VelocityFlow(centres, vectors, float(width), n_steps)
    peak = np.linalg.norm(flow.velocity(pts), axis=1).max()
    return flow.scaled(amplitude / peak)


def _normal_field(
    shape: Shape, amplitude: float, width: float, n_centres: int, rng: np.random.Generator
) -> VelocityFlow:
    """A Gaussian-kernel field whose vectors point along the surface's normal at their centres
    (the area-weighted vertex normals averaged over the kernel width, so folds smaller than the
    kernel do not count), with standard-normal signed lengths, scaled to a peak of
    ``amplitude`` mm over the shape's points: bumps and dents."""
    from .geometry import vertex_areas, vertex_normals

    if shape.faces is None:
        raise ValueError("normal_amplitude needs a triangle mesh (its normals); got a point cloud")
    pts, faces = np.asarray(shape.points), np.asarray(shape.faces)
    centres = pts[rng.choice(len(pts), size=min(n_centres, len(pts)), replace=False)]
    heights = rng.standard_normal(len(centres))
    area_normals = vertex_areas(pts, faces)[:, None] * vertex_normals(pts, faces)
    d2 = ((centres[:, None, :] - pts[None, :, :]) ** 2).sum(-1)  # (K, N)
    normals = np.exp(-d2 / (2.0 * width**2)) @ area_normals
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    flow = VelocityFlow(centres, heights[:, None] * normals, float(width))
    return flow.scaled(amplitude / np.linalg.norm(flow.velocity(pts), axis=1).max())


def random_rigid(
    *,
    angle_deg: float,
    translation_mm: float,
    centre: np.ndarray,
    seed: int | np.random.Generator = 0,
) -> RigidMotion:
    """A rotation by exactly ``angle_deg`` about a random axis through ``centre``, then a
    translation of length exactly ``translation_mm`` in a random direction."""
    rng = np.random.default_rng(seed)
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    theta = np.deg2rad(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * (k @ k)  # Rodrigues
    direction = rng.standard_normal(3)
    translation = translation_mm * direction / np.linalg.norm(direction)
    return RigidMotion(rotation, translation, np.asarray(centre, dtype=np.float64))


def _subdivide(points: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split every triangle into four through its edge midpoints (same surface, more vertices)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    mids = len(points) + inverse.reshape(3, -1).T  # (F, 3): midpoint index of edges 01, 12, 20
    new_points = np.vstack([points, 0.5 * (points[unique[:, 0]] + points[unique[:, 1]])])
    a, b, c = faces.T
    ab, bc, ca = mids.T
    new_faces = np.concatenate([
        np.stack([a, ab, ca], 1), np.stack([ab, b, bc], 1), np.stack([ca, bc, c], 1), np.stack([ab, bc, ca], 1),
    ])
    return new_points, new_faces


def resample_surface(shape: Shape, seed: int | np.random.Generator = 0, *, n_points: int | None = None) -> Shape:
    """The same surface sampled by different vertices, in a different order.

    Steps: split every triangle in four (midpoints), slide every vertex to a random point of
    one of its incident triangles (so vertices stay on the original piecewise-linear surface
    and none keeps its original position), decimate back to about ``n_points``, and shuffle
    the vertex order. A registration cannot then succeed by matching vertex twins or indices.

    Parameters
    ----------
    shape : Shape
        A triangle mesh.
    seed : int or numpy Generator, default: 0
    n_points : int or None, default: None
        Vertex count of the result (about); None keeps the input's count.

    Returns
    -------
    Shape
        A new mesh with default (area) weights; point data is not carried.
    """
    if shape.faces is None:
        raise ValueError("resample_surface needs a triangle mesh; got a point cloud")
    rng = np.random.default_rng(seed)
    n_target = n_points or shape.n_points
    pts, faces = _subdivide(np.asarray(shape.points), np.asarray(shape.faces))
    # One random incident triangle per vertex: the last triangle listed for it after a shuffle.
    order = rng.permutation(len(faces) * 3)
    owner = np.empty(len(pts), dtype=np.int64)
    owner[faces.ravel()[order]] = order // 3
    tri = pts[faces[owner]]  # (N, 3 corners, 3)
    # Random convex weights, pulled towards the vertex's own corner so triangles do not fold.
    w = rng.dirichlet(np.ones(3), size=len(pts)) * 0.6
    own = np.argmax(faces[owner] == np.arange(len(pts))[:, None], axis=1)
    w[np.arange(len(pts)), own] += 0.4
    moved = np.einsum("nc,ncd->nd", w, tri)
    fine = Shape(moved, faces, name=shape.name, units=shape.units)
    coarse = fine.decimate(n_target)
    perm = rng.permutation(coarse.n_points)
    inverse = np.argsort(perm)
    return Shape(coarse.points[perm], inverse[coarse.faces], name=shape.name, units=shape.units,
                 source=shape.source)


def warp_pair(
    shape: Shape,
    seed: int = 0,
    *,
    amplitude: float = 10.0,
    angle_deg: float = 20.0,
    translation_mm: float = 10.0,
    width: float | None = None,
    resample: bool = True,
) -> WarpPair:
    """A target for registering ``shape``: a known smooth warp, a rigid motion, a new sampling.

    Parameters
    ----------
    shape : Shape
        The source surface (mm).
    seed : int, default: 0
    amplitude : float, default: 10.0
        Largest velocity of the non-rigid flow (mm); about its largest displacement.
    angle_deg : float, default: 20.0
        Rotation angle (degrees), about a random axis through the centroid.
    translation_mm : float, default: 10.0
        Length of the translation (mm).
    width : float or None, default: None
        Kernel width (mm); None is a fifth of the diameter.
    resample : bool, default: True
        Resample the target (:func:`resample_surface`) so no vertex corresponds by index.

    Returns
    -------
    WarpPair
        ``target``, ``truth`` (N, 3) (where each source vertex lands) and ``warp``.
    """
    rng = np.random.default_rng(seed)
    pts = np.asarray(shape.points)
    flow = random_diffeomorphism(pts, amplitude=amplitude, width=width, seed=rng)
    rigid = random_rigid(angle_deg=angle_deg, translation_mm=translation_mm, centre=pts.mean(axis=0), seed=rng)
    warp = KnownWarp(flow, rigid)
    truth = warp.apply(pts)
    target = shape.replace(points=truth, point_data={}, name=f"{shape.name} warped (seed {seed})")
    if resample:
        target = resample_surface(target, rng)
        target = target.replace(name=f"{shape.name} warped (seed {seed})")
    return WarpPair(target, truth, warp)


def make_cohort(
    shape: Shape,
    n_subjects: int = 10,
    seed: int = 0,
    *,
    amplitude: float = 4.0,
    mode_amplitude: float = 8.0,
    angle_deg: float = 4.0,
    translation_mm: float = 4.0,
    width: float | None = None,
    resample: bool = True,
    normal_amplitude: float = 0.0,
    pairs: str = "flow",
) -> Cohort:
    """A population whose true mean is ``shape``: pairs of opposite random warps.

    Subjects come in pairs 2k, 2k+1. Each pair draws a random velocity field v_k, a score s_k
    along one shared field w (the dominant mode), optionally a field b_k of bumps and dents
    along the surface's normals, and a small rigid motion M_k; with u_k = v_k + s_k w + b_k,
    subject 2k is M_k o flow(u_k) and subject 2k+1 is M_k^-1 o flow(-u_k) (``pairs="flow"``).
    Forward and backward flows of the same field average to the identity up to second order,
    so the cohort's mean shape is ``shape`` and its first principal mode is w.

    The second-order remainder grows with the square of the displacements: it is what known
    correspondences leave between a template and ``shape`` (0.08 mm for subjects 0.8 mm from a
    frog kidney, 0.5 mm for subjects 3 mm from it). ``pairs="linear"`` removes it: subject 2k is
    M_k(x + u'_k(x)) and 2k+1 is M_k^-1(x - u'_k(x)), u'_k being u_k less its area-weighted
    infinitesimal similarity at the shape's points (:meth:`LinearDisplacement.without_similarity`),
    so a pair averages exactly to ``shape`` and a similarity Procrustes analysis of the truths
    gives it back (0.02 mm for the kidney's 3 mm cohort); the first principal mode is then w less
    its similarity part.

    Parameters
    ----------
    shape : Shape
        The reference surface (mm).
    n_subjects : int, default: 10
        An even number of subjects.
    seed : int, default: 0
    amplitude : float, default: 4.0
        Largest velocity of each pair's own random field (mm).
    mode_amplitude : float, default: 8.0
        Largest velocity of the shared mode at score 1; scores are drawn uniformly in
        [0.5, 1] (mm = mode_amplitude * score).
    angle_deg, translation_mm : float, default: 4.0, 4.0
        Rigid motion of each pair (degrees, mm); 0 for none.
    width : float or None, default: None
        Kernel width (mm); None is a fifth of the diameter.
    resample : bool, default: True
        Resample each subject so that no vertex corresponds to the reference by index.
    normal_amplitude : float, default: 0.0
        Largest velocity of each pair's field of bumps and dents b_k (mm): 24 kernels whose
        vectors point along the surface's normal at their centres (averaged over the kernel
        width) with random signed lengths. Surface distances see these displacements, unlike
        slides along the surface. 0 for none (and the same subjects as without the option).
        Needs a triangle mesh.
    pairs : {"flow", "linear"}, default: "flow"
        Subjects as flows of +-u_k, or as x +- u'_k(x) (see above). ``"linear"`` raises a
        ValueError where x +- u'_k(x) would fold (det(I +- du'/dx) <= 0 at a point of the
        shape): lower the amplitudes or widen the kernels.

    Returns
    -------
    Cohort
    """
    if n_subjects < 2 or n_subjects % 2:
        raise ValueError(f"n_subjects must be even and >= 2; got {n_subjects}")
    if pairs not in ("flow", "linear"):
        raise ValueError(f"pairs must be 'flow' or 'linear'; got {pairs!r}")
    if not normal_amplitude >= 0:
        raise ValueError(f"normal_amplitude must be >= 0 (mm); got {normal_amplitude}")
    from .geometry import diameter

    rng = np.random.default_rng(seed)
    pts = np.asarray(shape.points)
    centre = pts.mean(axis=0)
    width = 0.2 * diameter(pts) if width is None else float(width)
    mode_field = random_diffeomorphism(pts, amplitude=1.0, width=width, seed=rng) if mode_amplitude else None
    weights = np.asarray(shape.weights)
    subjects, truths, warps, scores = [], [], [], []
    for _ in range(n_subjects // 2):
        own = random_diffeomorphism(pts, amplitude=amplitude, width=width, seed=rng)
        score = float(rng.uniform(0.5, 1.0)) * mode_amplitude if mode_field is not None else 0.0
        parts = [own]
        if mode_field is not None:
            assert own.width == mode_field.width
            parts.append(mode_field.scaled(score))
        if normal_amplitude:  # drawn only when asked: without it the random stream is unchanged
            parts.append(_normal_field(shape, normal_amplitude, width, 24, rng))
        # One field: the kernels of the pair's own field, of the scaled mode and of the bumps.
        flow = parts[0] if len(parts) == 1 else VelocityFlow(
            np.vstack([f.centres for f in parts]), np.vstack([f.vectors for f in parts]), own.width, own.n_steps)
        rigid = (
            random_rigid(angle_deg=angle_deg, translation_mm=translation_mm, centre=centre, seed=rng)
            if (angle_deg or translation_mm) else None
        )
        if pairs == "linear":
            move = LinearDisplacement.without_similarity(flow, pts, weights)
            backward = move.negated()
            folds = min(move.min_jacobian(pts), backward.min_jacobian(pts))
            if not folds > 0:
                raise ValueError(f"pairs='linear': x +- u(x) folds (det of its Jacobian {folds:.3g} <= 0 at a point); "
                                 "lower the amplitudes or widen the kernels")
        else:
            move, backward = flow, flow.inverse()
        for sign in (+1, -1):
            warp = KnownWarp(move if sign > 0 else backward,
                             None if rigid is None else (rigid if sign > 0 else rigid.inverse()))
            truth = warp.apply(pts)
            subject = shape.replace(points=truth, point_data={}, name=f"subject_{len(subjects) + 1:02d}")
            if resample:
                subject = resample_surface(subject, rng).replace(name=subject.name)
            subjects.append(subject)
            truths.append(truth)
            warps.append(warp)
            scores.append(sign * score)
    scores = np.asarray(scores)
    if mode_field is not None:
        if pairs == "linear":  # the subjects vary along w less its similarity part
            mode = LinearDisplacement.without_similarity(mode_field, pts, weights).displacement(pts)
            peak = np.linalg.norm(mode, axis=1).max()
            scores = scores * peak  # mm along the mode of max norm 1
        else:
            mode = mode_field.velocity(pts)
        mode /= np.linalg.norm(mode, axis=1).max()
    else:
        mode = np.zeros_like(pts)
    params = dict(n_subjects=n_subjects, seed=seed, amplitude=amplitude, mode_amplitude=mode_amplitude,
                  angle_deg=angle_deg, translation_mm=translation_mm,
                  width=float(warps[0].flow.width), resample=resample)
    if normal_amplitude or pairs != "flow":  # the manifests of earlier cohorts stay as they were
        params.update(normal_amplitude=normal_amplitude, pairs=pairs)
    return Cohort(shape, subjects, truths, warps, mode, scores, params)
