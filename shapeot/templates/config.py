"""Parameters of :func:`shapeot.template`: :class:`TemplateConfig`.

Lengths are in millimetres (the shapes' units) where the name ends in ``_mm``, and fractions of
the template's ``scale`` (the RMS distance of its vertices to their area-weighted centroid,
about 55 mm for a brain hemisphere) otherwise, as in :class:`shapeot.RegistrationConfig`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from shapeot.core.config import ConfigError, check_bool, check_choice, check_float, check_int, fail, from_data, to_toml
from shapeot.registration import Level, PrealignConfig, RegistrationConfig
from shapeot.registration.config import MAX_POINTS

__all__ = ["TemplateConfig", "TEMPLATE_LEVELS", "PROCRUSTES_KINDS"]

PROCRUSTES_KINDS = ("rigid", "similarity")
#: Most template updates or Procrustes rounds: each costs one registration (or OT solve) per subject.
MAX_ITERATIONS = 1000

#: Coarse-to-fine schedule of the template -> subject registrations (``nonrigid`` preset). The
#: subjects are already in the Procrustes frame and the template sits at their centre, so two
#: levels suffice; both match grid clusters (never all the vertices), so one registration costs
#: about the same at 2.5k and 10k vertices, and the last level's spline moves every vertex. As in
#: the ``nonrigid`` preset, the OT cost prices the normals too (weight 0.2 of the scale): on
#: smooth organs with subjects >= 3 mm from the mean, positions alone slide the correspondences
#: (frog liver: template 0.91 -> 0.72 mm from the true mean, docs/templates.md).
TEMPLATE_LEVELS = (
    Level(800, 0.06, 0.30, 1, normals=0.2),
    Level(2500, 0.02, 0.10, 1, normals=0.2),
)


@dataclass(frozen=True)
class TemplateConfig:
    """Everything :func:`shapeot.template` needs besides the shapes.

    Attributes
    ----------
    preset : {"affine", "nonrigid", "diffeomorphic"}
        Registration preset of the template -> subject registrations (see
        :meth:`shapeot.RegistrationConfig.from_preset`); ``nonrigid`` uses the faster
        :data:`TEMPLATE_LEVELS`. Ignored when ``registration`` is given.
    registration : RegistrationConfig or None
        The exact registration configuration to use (overrides ``preset``); metrics are
        switched off in it (the template computes its own distances).
    iterations : int
        Most template updates; each costs one registration per subject.
    tolerance_mm : float
        Convergence: stop when an update moves the template's surface less than this: the
        area-weighted RMS over its vertices of the move along the vertex normals (mm). Vertices
        sliding along the surface do not change the template's shape and are not counted. The
        default, 0.2 mm, is below the registrations' own accuracy (~0.35 mm on the sample
        cohort).
    smoothing : float
        Width of the Gaussian kernel that smooths each update of the template (fraction of the
        scale, never below the template's mean vertex spacing); 0 switches the smoothing off.
    procrustes : {"rigid", "similarity"} or None
        Pre-alignment model of the generalised Procrustes analysis; None: the subjects are
        taken as already aligned (each registration then starts with a rigid pre-alignment).
    procrustes_starts : int
        Starting rotations of the robust first alignment to a reference subject (1-24, the
        rotations of the cube; 24 copes with scans in any orientation).
    procrustes_points : int
        Points per subject (grid clusters) of the Procrustes rounds.
    procrustes_iterations : int
        Most generalised Procrustes rounds (align every subject to the mean, update the mean).
    procrustes_blur : float
        OT blur of the Procrustes rounds (fraction of the scale).
    medoid_points : int
        Points per subject (grid clusters) of the pairwise Sinkhorn divergences that pick the
        medoid.
    n_modes : int
        Principal modes kept (at most the number of subjects minus one).
    compute_distances : bool
        Point-to-surface distances between the template and each subject (exact, over all
        vertices both ways; a fraction of a second per subject at 41k vertices).
    retries : int
        Dask only: times a failed subject task is retried (a worker that dies is handled by
        the scheduler, which reruns its tasks elsewhere).
    """

    preset: str = "nonrigid"
    registration: RegistrationConfig | None = None
    iterations: int = 4
    tolerance_mm: float = 0.2
    smoothing: float = 0.02
    procrustes: str | None = "similarity"
    procrustes_starts: int = 24
    procrustes_points: int = 600
    procrustes_iterations: int = 4
    procrustes_blur: float = 0.03
    medoid_points: int = 300
    n_modes: int = 5
    compute_distances: bool = True
    retries: int = 2

    def __post_init__(self) -> None:
        if self.registration is None:
            check_choice("preset", self.preset, ("affine", "nonrigid", "diffeomorphic"))
        elif not isinstance(self.registration, RegistrationConfig):
            fail("registration", "must be a shapeot.RegistrationConfig or None; "
                                 f"got {type(self.registration).__name__}")
        check_choice("procrustes", self.procrustes, (None, *PROCRUSTES_KINDS))
        check_int("iterations", self.iterations, 1, MAX_ITERATIONS)
        check_float("tolerance_mm", self.tolerance_mm, 0.0)
        check_float("smoothing", self.smoothing, 0.0)
        check_int("procrustes_starts", self.procrustes_starts, 1, 24)
        check_int("procrustes_points", self.procrustes_points, 10, MAX_POINTS)
        check_int("medoid_points", self.medoid_points, 10, MAX_POINTS)
        check_int("procrustes_iterations", self.procrustes_iterations, 0, MAX_ITERATIONS)
        check_float("procrustes_blur", self.procrustes_blur, 0.0, open_lo=True)
        check_int("n_modes", self.n_modes, 0, 10_000)
        check_int("retries", self.retries, 0, 100)
        check_bool("compute_distances", self.compute_distances)

    def registration_config(self) -> RegistrationConfig:
        """The configuration of every template -> subject registration.

        Subjects are already in the Procrustes frame, so the registration skips its own
        pre-alignment unless ``procrustes`` is None; metrics are off (the template measures its
        own distances).
        """
        if self.registration is not None:
            return self.registration.replace(compute_metrics=False)
        prealign = None if self.procrustes else PrealignConfig(model="rigid", starts=1)
        extra = {"levels": TEMPLATE_LEVELS} if self.preset == "nonrigid" else {}
        if self.preset == "affine":  # the affine preset is a pre-alignment, from the Procrustes frame
            prealign = PrealignConfig(model="affine", starts=1, refine_points=1000, iterations=6)
        return RegistrationConfig.from_preset(self.preset, prealign=prealign, compute_metrics=False, **extra)

    @classmethod
    def from_dict(cls, data: dict) -> TemplateConfig:
        """A configuration from plain data (a TOML table): its fields over the defaults, and a
        ``registration`` table read over the registration configuration those fields give
        (:meth:`registration_config`: a partial table keeps its values). A wrong type or range
        names the field (:class:`shapeot.core.config.ConfigError`)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a template configuration is a table of fields; got {type(data).__name__}")
        fields = dict(data)
        registration = fields.pop("registration", None)
        base = from_data(cls(), fields)
        if isinstance(registration, dict):
            return dataclasses.replace(base, registration=from_data(base.registration_config(), registration,
                                                                    "registration."))
        if registration is not None:
            raise ConfigError(f"registration: expected a table of fields; got {registration!r}")
        return base

    def to_toml(self) -> str:
        """This configuration as a TOML file that ``shapeot template --config`` reads back."""
        from shapeot.core.version import version

        return to_toml(self.to_dict(), f"shapeot {version()} template configuration")

    def replace(self, **changes) -> "TemplateConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain-data form (for JSON summaries); ``registration`` is the configuration used."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "registration"}
        out["registration"] = self.registration_config().to_dict()
        return out
