"""Parameters of :func:`shapeot.register` and its presets ``rigid``, ``affine``, ``nonrigid``, ``diffeomorphic``.

Lengths in the configuration (blurs, reaches, kernel widths) are fractions of the pipeline's
``scale``: the root-mean-square distance of the source's vertices to their (area-weighted)
centroid. Every shape then "just works" in any unit; for an fsaverage hemisphere the scale is
about 55 mm, so ``blur=0.02`` is about 1.1 mm.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Level", "RegistrationConfig", "PRESETS"]

PRESETS = ("rigid", "affine", "nonrigid", "diffeomorphic")


@dataclass(frozen=True)
class Level:
    """One coarse-to-fine step of the non-rigid stage.

    Attributes
    ----------
    points : int or None
        Source and target are reduced to about this many weighted points (grid clusters) for
        the OT correspondences and the fit; None uses every vertex.
    blur : float
        OT blur (fraction of the scale): correspondences are averaged over about this length.
    width : float
        Gaussian kernel width of the deformation (fraction of the scale): smaller is finer.
    iterations : int
        OT-then-fit rounds at this level.
    control_points : int
        LDDMM only: number of control points (grid clusters of the moving source).
    normals : float
        Weight alpha (fraction of the scale) of the unit normals in the OT cost,
        |x - y|^2 + alpha^2 |n_x - n_y|^2 between two meshes; where a side is a point cloud,
        unoriented normals from local PCA, priced alpha^2 (1 - (n_x . n_y)^2) (0: positions
        only). Mass can then no
        longer slide tangentially for free: a slide turns the normal, and the normal term
        prices it, where smooth or folded surfaces leave positions alone ambiguous. The
        ``nonrigid`` preset uses 0.2 at every level: 10k brains, same vertices 0.250 / 0.764 ->
        0.059 / 0.140 mm (mean / p95), remeshed mean 0.579 -> 0.274 mm; smooth frog organs 1.5-4x
        lower errors (docs/registration.md); about 1.8x the time at 10k (the OT runs in 6-D,
        multiscale above 5k x 5k points).
    model : {"spline", "lddmm"} or None
        This level's deformation model; None: the configuration's ``model``. The
        ``diffeomorphic`` preset ends with the spline preset's full-resolution levels (each step
        kept injective, see ``nonrigid.MAX_STEP_STRAIN``) after its two LDDMM levels.
    """

    points: int | None
    blur: float
    width: float
    iterations: int = 1
    control_points: int = 300
    normals: float = 0.0
    model: str | None = None


# normals=0.2 at every level: see Level.normals (issue 16's ablation, docs/registration.md).
_SPLINE_LEVELS = (
    Level(1000, 0.08, 0.40, 2, normals=0.2),
    # Full resolution from the second level on, instead of 2000 then 4000 grid clusters: the
    # clusters' centroids sit between the banks of the sulci, differently on the two shapes, and
    # OT between them slid whole patches along the folds, which no later level undid (10k
    # same-vertex 95th percentile 2.22 -> 1.08 mm, mean 0.48 -> 0.29 mm, same time: one 10k
    # multiscale solve costs about a 4000-point dense one). Width 0.3 rather than 0.2: 1.08 ->
    # 0.93 mm (benchmarks/register.py; docs/registration.md).
    Level(None, 0.04, 0.30, 2, normals=0.2),
    Level(None, 0.01, 0.04, 4, normals=0.2),
)
# The diffeomorphic preset: LDDMM geodesic shooting at the coarse levels, then the spline
# preset's full-resolution levels, whose steps are kept injective (nonrigid.injective_steps), so
# the composition stays a diffeomorphism. Issue 16's ablation (benchmarks/smooth.py, frog
# organs; mean / 95th percentile error, mm): LDDMM alone (positions only, 3 levels +
# fine-tuning) had a 95th percentile above affine's on 3 of 5 cases (liver 1.35 / 4.61 against
# affine 1.63 / 3.46); normals 0.2 gave 1.08 / 3.10 (fine-tuning made it worse: 3.61); the
# spline preset's last level after the 3 LDDMM levels 0.73 / 2.11; 2 LDDMM levels then the
# spline's 2 full-resolution levels 0.59 / 1.55 (stomach 0.57 / 1.22, liver under a narrow warp
# 1.44 / 5.30 against 1.76 / 6.68).
_LDDMM_LEVELS = (
    Level(1000, 0.08, 0.40, 2, 60, normals=0.2),
    Level(2000, 0.04, 0.20, 2, 200, normals=0.2),
    *(dataclasses.replace(lv, model="spline") for lv in _SPLINE_LEVELS[1:]),
)


@dataclass(frozen=True)
class RegistrationConfig:
    """Everything :func:`shapeot.register` needs to know; build it with :meth:`preset`.

    Attributes
    ----------
    preset : str
        Name of the preset this configuration came from (informational).
    normalise : bool
        Centre both shapes on their centroids and divide by the scale (undone in the outputs).
    prealign : {"rigid", "similarity", "affine"} or None
        Model of the OT pre-alignment, or None to skip it.
    prealign_starts : int
        Starting rotations tried: 1 (identity) or up to 24 (the rotations of the cube, identity
        first); the start ending with the smallest Sinkhorn divergence wins.
    prealign_points : int
        Points per shape during the search over starting rotations (grid clusters).
    prealign_refine_points : int
        Points per shape while refining the winning start.
    prealign_blurs : tuple of float
        Annealed blurs of each start's first rounds (fractions of the scale); the last one is
        kept for the final rounds.
    prealign_iterations : int
        Most OT + Procrustes rounds of the winning start, a third each at the last of
        ``prealign_blurs``, its half and its quarter, Anderson-accelerated (a blur is left early
        once a step moves no point more than 1e-4 scale or the OT value changes by < 0.1 %).
    prealign_reach : float or None
        Reach of the unbalanced OT of the pre-alignment (robust to missing parts); None: balanced.
    model : {"spline", "lddmm"} or None
        Non-rigid deformation model, or None for a linear registration only.
    levels : tuple of Level
        Coarse-to-fine schedule of the non-rigid stage.
    reach : float or None
        Reach of the non-rigid stage's OT; None: balanced (whole shapes on both sides), or
        ``cloud_reach`` when a shape is a point cloud.
    cloud_reach : float or None
        Reach of the non-rigid stage's OT when ``reach`` is None and the source or the target
        has no faces. A point cloud carries no surface areas: its points weigh the same whatever
        the local sampling density, and balanced OT slides mass along the surface to make up the
        two samplings' differences. Unbalanced OT (Sejourne, Feydy, Vialard, Trouve & Peyre,
        "Sinkhorn divergences for unbalanced optimal transport", 2019) creates or destroys that
        mass instead: frog liver cloud 0.84 / 3.43 -> 0.40 / 0.87 mm (mean / p95 error, issue
        16, docs/registration.md). None: balanced for clouds too.
    scaling : float
        Epsilon-scaling ratio of the OT solver.
    lddmm_steps : int
        Integration steps of the geodesic shooting.
    lddmm_gamma : float
        Weight of the deformation energy H(q, p) against the squared matching error (LDDMM fit).
    fit_iterations : int
        L-BFGS iterations of each LDDMM fit.
    finetune_iterations : int
        Gradient steps (L-BFGS) of the fine-tuning of Sinkhorn divergence + energy; 0 skips it.
    finetune_points, finetune_blur, finetune_width, finetune_gamma, finetune_control_points :
        Points per shape, blur, kernel width, energy weight and number of control points of the
        fine-tuning (lengths as fractions of the scale).
    min_blur_spacings, min_width_spacings : float
        Floors of every level's blur and kernel width (and of the fine-tuning's), in units of
        the sampling spacing (mean nearest-neighbour distance of the sparser shape; 2.2 mm for
        fsaverage5): finer, OT would match one sampling onto the other and the spline would
        follow that noise. 3 spacings rather than 2 for the width: 10k same-vertex 95th
        percentile 0.93 -> 0.74 mm, remeshed mean 0.68 -> 0.58 mm.
    working_points : int or None
        Shapes with more vertices are reduced to about this many (quadric decimation of a mesh,
        weighted grid clusters of a cloud) for the pre-alignment and the non-rigid levels; the
        final map is then evaluated at every vertex. This bounds the time and memory of a
        164k-vertex FreeSurfer surface near those of the 10k sample brain. None: every vertex
        (the cost then grows as N^2).
    centre_cell : float
        Each spline pools its centres in cubic cells of this many kernel widths (0: one centre
        per point): the field moves by about 0.5 % of its variation at 0.5, and the number of
        centres follows the shape's size over the width, not the vertex count.
    backend : str
        OT backend ("auto", "torch", "keops").
    device : str
        Torch device of the computations: "auto" (the default: the first GPU when CUDA works,
        else the CPU), "cpu", "cuda" or "cuda:N"; resolved once per registration by
        :func:`shapeot.ot.device.resolve_device` (``Registration.config.device`` says which).
    compute_metrics : bool
        Compute the before/after metrics (point-to-surface queries cost a second or two at 10k).
    """

    preset: str = "nonrigid"
    normalise: bool = True
    prealign: str | None = "rigid"
    prealign_starts: int = 24
    prealign_points: int = 600
    prealign_refine_points: int = 1500
    prealign_blurs: tuple[float, ...] = (0.5, 0.25, 0.12)
    prealign_iterations: int = 20
    prealign_reach: float | None = 1.0
    model: str | None = "spline"
    levels: tuple[Level, ...] = _SPLINE_LEVELS
    reach: float | None = None
    cloud_reach: float | None = 0.2
    scaling: float = 0.5
    lddmm_steps: int = 6
    lddmm_gamma: float = 1e-3
    fit_iterations: int = 10
    finetune_iterations: int = 0
    finetune_points: int = 1000
    finetune_blur: float = 0.02
    finetune_width: float = 0.12
    finetune_gamma: float = 1e-4
    finetune_control_points: int = 300
    min_blur_spacings: float = 0.5
    min_width_spacings: float = 3.0
    working_points: int | None = 12000
    centre_cell: float = 0.5
    backend: str = "auto"
    device: str = "auto"
    compute_metrics: bool = True

    def __post_init__(self) -> None:
        if self.prealign not in (None, "rigid", "similarity", "affine"):
            raise ValueError(f"prealign must be 'rigid', 'similarity', 'affine' or None; got {self.prealign!r}")
        if self.model not in (None, "spline", "lddmm"):
            raise ValueError(f"model must be 'spline', 'lddmm' or None; got {self.model!r}")
        if not 1 <= self.prealign_starts <= 24:
            raise ValueError(f"prealign_starts must be in [1, 24]; got {self.prealign_starts}")
        if not self.prealign_blurs or min(self.prealign_blurs) <= 0:
            raise ValueError("prealign_blurs must be a non-empty tuple of positive fractions of the scale")
        for lv in self.levels:
            if lv.blur <= 0 or lv.width <= 0 or lv.iterations < 1 or (lv.points is not None and lv.points < 2) \
                    or lv.normals < 0 or lv.model not in (None, "spline", "lddmm"):
                raise ValueError(f"invalid level {lv}: blur and width must be > 0, iterations >= 1, points >= 2, "
                                 "normals >= 0, model 'spline', 'lddmm' or None")
        if self.working_points is not None and (isinstance(self.working_points, bool)
                                                or not isinstance(self.working_points, int)
                                                or self.working_points < 100):
            raise ValueError(f"working_points must be an integer >= 100 or None; got {self.working_points!r}")
        if not (self.centre_cell >= 0 and self.centre_cell <= 2):
            raise ValueError(f"centre_cell must be in [0, 2] kernel widths; got {self.centre_cell!r}")
        if self.min_blur_spacings < 0 or self.min_width_spacings < 0:
            raise ValueError("min_blur_spacings and min_width_spacings must be >= 0")
        if self.model is not None and not self.levels:
            raise ValueError("a non-rigid model needs at least one level")
        for name in ("prealign_reach", "reach", "cloud_reach"):
            v = getattr(self, name)
            if v is not None and not v > 0:  # NaN too
                raise ValueError(f"{name} must be > 0 or None; got {v}")
        if self.finetune_iterations < 0 or self.lddmm_steps < 1:
            raise ValueError("finetune_iterations must be >= 0 and lddmm_steps >= 1")

    @classmethod
    def from_preset(cls, name: str = "nonrigid", **overrides) -> "RegistrationConfig":
        """The configuration of a named preset, with any field overridden.

        * ``rigid``: OT pre-alignment by rotation + translation only;
        * ``affine``: rigid pre-alignment, then affine rounds;
        * ``nonrigid``: rigid pre-alignment, then coarse-to-fine Gaussian kernel splines ending
          at full resolution (accurate; not guaranteed to be invertible);
        * ``diffeomorphic``: rigid pre-alignment, then LDDMM geodesic shooting at the two
          coarse levels and the spline preset's two full-resolution levels in injective steps
          (a composition of diffeomorphisms); normals in the OT cost throughout. The fine-tuning of
          Sinkhorn divergence + energy (``finetune_iterations``) is off: it raised the 95th
          percentile on smooth organs (liver 3.10 -> 3.61 mm).
        """
        base = {
            "rigid": dict(prealign="rigid", model=None, levels=()),
            "affine": dict(prealign="affine", model=None, levels=()),
            "nonrigid": dict(prealign="rigid", model="spline", levels=_SPLINE_LEVELS),
            "diffeomorphic": dict(prealign="rigid", model="lddmm", levels=_LDDMM_LEVELS, finetune_iterations=0),
        }
        if name not in base:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(preset=name, **{**base[name], **overrides})

    def replace(self, **changes) -> "RegistrationConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain-data form (for JSON summaries)."""
        return dataclasses.asdict(self)
