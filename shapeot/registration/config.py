"""Parameters of :func:`shapeot.register`: one configuration per stage, and the presets as data.

:class:`RegistrationConfig` holds the stages' configurations, nested:

* ``prealign``: :class:`PrealignConfig` or None (no pre-alignment);
* ``model`` and ``levels``: the non-rigid stage, a tuple of :class:`Level` (coarse to fine), with
  :class:`LDDMMOptions` for the LDDMM levels; ``model=None`` stops after the pre-alignment;
* ``finetune``: :class:`FinetuneConfig` or None (no fine-tuning);
* ``engine``: :class:`EngineOptions` (epsilon-scaling, backend, device of every OT solve).

Lengths in the configuration (blurs, reaches, kernel widths) are fractions of the pipeline's
``scale``: the root-mean-square distance of the source's vertices to their (area-weighted)
centroid. Every shape then "just works" in any unit; for an fsaverage hemisphere the scale is
about 55 mm, so ``blur=0.02`` is about 1.1 mm.

The presets are TOML files in ``shapeot/registration/presets/`` (``rigid``, ``affine``,
``nonrigid``, ``diffeomorphic``), each stating what it changes from the defaults of these
classes and why. :meth:`RegistrationConfig.from_dict` reads the same plain data (a ``--config``
file, a JSON summary's ``config``) over a preset: a field it does not name keeps the preset's
value, a ``[[levels]]`` table that names only some fields keeps the preset's level at the same
position for the others, and a value of the wrong type or range is refused with the field's
dotted name (``prealign.starts``, ``levels[2].width``). In TOML, where there is no null,
``"none"`` stands for None and ``false`` switches an optional stage off.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from shapeot.core.config import (
    ConfigError,
    check_bool,
    check_choice,
    check_float,
    check_int,
    fail,
    from_data,
    to_data,
    to_toml,
)

__all__ = ["Level", "PrealignConfig", "FinetuneConfig", "LDDMMOptions", "EngineOptions", "RegistrationConfig",
           "PRESETS", "ConfigError"]

PRESETS = ("rigid", "affine", "nonrigid", "diffeomorphic")
LINEAR_MODELS = ("rigid", "similarity", "affine")
NONRIGID_MODELS = ("spline", "lddmm")
BACKENDS = ("auto", "torch", "keops", "triton")
#: Caps on counts, each with the reason a larger value is a mistake rather than a wish.
MAX_POINTS = 10_000_000        # a 164k hemisphere is 1.6e5; more than this would not fit in memory
MAX_ROUNDS = 1000              # rounds of a level or of the pre-alignment: each costs an OT solve
MAX_STEPS = 10_000             # LDDMM integration steps or L-BFGS iterations


@dataclass(frozen=True)
class EngineOptions:
    """How every OT solve of the registration runs.

    Attributes
    ----------
    scaling : float
        Epsilon-scaling ratio of the OT solver, in (0, 1): 0.5 fast, 0.9 accurate.
    backend : {"auto", "torch", "keops", "triton"}
        OT backend (:func:`shapeot.ot.solve`).
    device : str
        Torch device: "auto" (the first GPU when CUDA works, else the CPU), "cpu", "cuda" or
        "cuda:N"; resolved once per registration (``Registration.config.engine.device`` says which).
    """

    scaling: float = 0.5
    backend: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        check_float("scaling", self.scaling, 0.0, 1.0, open_lo=True)
        if self.scaling >= 1.0:
            fail("scaling", f"must be < 1; got {self.scaling}")
        check_choice("backend", self.backend, BACKENDS)
        if not isinstance(self.device, str) or not self.device:
            fail("device", f"must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {self.device!r}")


@dataclass(frozen=True)
class PrealignConfig:
    """The OT pre-alignment: unbalanced OT correspondences -> weighted Procrustes / affine fit, iterated.

    Attributes
    ----------
    model : {"rigid", "similarity", "affine"}
        The linear map fitted.
    starts : int
        Starting rotations tried: 1 (identity) to 24 (the rotations of the cube, identity
        first); the start ending with the smallest Sinkhorn divergence wins.
    points : int
        Points per shape during the search over starting rotations (grid clusters).
    refine_points : int
        Points per shape while refining the winning start.
    blurs : tuple of float
        Annealed blurs of each start's first rounds (fractions of the scale); the last one is
        kept for the final rounds.
    iterations : int
        Most OT + Procrustes rounds of the winning start, a third each at the last of
        ``blurs``, its half and its quarter, Anderson-accelerated (a blur is left early once a
        step moves no point more than 1e-4 scale or the OT value changes by < 0.1 %).
    reach : float or None
        Reach of the unbalanced OT (robust to missing parts); None: balanced.
    keep : int or None
        Successive halving of the starts: after the second annealed round only the ``keep``
        starts with the lowest OT values go on, and after the last round only the best
        ``ceil(keep / 3)`` are scored by the divergence. None: every start runs every round and
        is scored (the 1.x behaviour). ``benchmarks/prealign.py`` measures it against all starts.
    """

    model: str = "rigid"
    starts: int = 24
    points: int = 600
    refine_points: int = 1500
    blurs: tuple[float, ...] = (0.5, 0.25, 0.12)
    iterations: int = 20
    reach: float | None = 1.0
    keep: int | None = 6

    def __post_init__(self) -> None:
        check_choice("model", self.model, LINEAR_MODELS)
        check_int("keep", self.keep, 1, 24, none=True)
        check_int("starts", self.starts, 1, 24)
        check_int("points", self.points, 10, MAX_POINTS)
        check_int("refine_points", self.refine_points, 10, MAX_POINTS)
        if not isinstance(self.blurs, tuple) or not self.blurs:
            fail("blurs", f"must be a non-empty list of positive fractions of the scale; got {self.blurs!r}")
        for i, b in enumerate(self.blurs):
            check_float(f"blurs[{i}]", b, 0.0, open_lo=True)
        check_int("iterations", self.iterations, 1, MAX_ROUNDS)
        check_float("reach", self.reach, 0.0, none=True, open_lo=True)


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
        only). Mass can then no longer slide tangentially for free: a slide turns the normal,
        and the normal term prices it, where smooth or folded surfaces leave positions alone
        ambiguous (the ``nonrigid`` preset's ablation: presets/nonrigid.toml).
    model : {"spline", "lddmm"} or None
        This level's deformation model; None: the configuration's ``model``.
    """

    points: int | None = None
    blur: float = 0.04
    width: float = 0.3
    iterations: int = 1
    control_points: int = 300
    normals: float = 0.0
    model: str | None = None

    def __post_init__(self) -> None:
        check_int("points", self.points, 2, MAX_POINTS, none=True)
        check_float("blur", self.blur, 0.0, open_lo=True)
        check_float("width", self.width, 0.0, open_lo=True)
        check_int("iterations", self.iterations, 1, MAX_ROUNDS)
        check_int("control_points", self.control_points, 1, MAX_POINTS)
        check_float("normals", self.normals, 0.0)
        check_choice("model", self.model, (*NONRIGID_MODELS, None))


@dataclass(frozen=True)
class LDDMMOptions:
    """Geodesic shooting of the LDDMM levels (Durrleman et al., NeuroImage 2014).

    Attributes
    ----------
    steps : int
        Integration steps of the geodesic shooting (more where the strain asks for them).
    gamma : float
        Weight of the deformation energy H(q, p) against the squared matching error.
    fit_iterations : int
        L-BFGS iterations of each LDDMM fit.
    """

    steps: int = 6
    gamma: float = 1e-3
    fit_iterations: int = 10

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 1, MAX_STEPS)
        check_float("gamma", self.gamma, 0.0)
        check_int("fit_iterations", self.fit_iterations, 1, MAX_STEPS)


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning: gradient descent (L-BFGS) on the Sinkhorn divergence + deformation energy.

    Attributes
    ----------
    iterations : int
        L-BFGS iterations.
    points : int
        Points per shape in the loss (grid clusters).
    blur : float
        OT blur (fraction of the scale).
    width : float
        Kernel width of the map (fraction of the scale).
    gamma : float
        Weight of the deformation energy.
    control_points : int
        Control points of the map.
    """

    iterations: int = 20
    points: int = 1000
    blur: float = 0.02
    width: float = 0.12
    gamma: float = 1e-4
    control_points: int = 300

    def __post_init__(self) -> None:
        check_int("iterations", self.iterations, 1, MAX_STEPS)
        check_int("points", self.points, 10, MAX_POINTS)
        check_float("blur", self.blur, 0.0, open_lo=True)
        check_float("width", self.width, 0.0, open_lo=True)
        check_float("gamma", self.gamma, 0.0)
        check_int("control_points", self.control_points, 1, MAX_POINTS)


#: The ``nonrigid`` preset's levels (presets/nonrigid.toml explains each choice).
_SPLINE_LEVELS = (
    Level(1000, 0.08, 0.40, 2, normals=0.2),
    Level(None, 0.04, 0.30, 2, normals=0.2),
    Level(None, 0.01, 0.04, 4, normals=0.2),
)


@dataclass(frozen=True)
class RegistrationConfig:
    """Everything :func:`shapeot.register` needs to know; build it with :meth:`from_preset`.

    The defaults are those of the ``nonrigid`` preset.

    Attributes
    ----------
    preset : str
        Name of the preset this configuration came from (informational).
    normalise : bool
        Centre both shapes on their centroids and divide by the scale (undone in the outputs).
    prealign : PrealignConfig or None
        The OT pre-alignment, or None to skip it.
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
    min_blur_spacings, min_width_spacings : float
        Floors of every level's blur and kernel width (and of the fine-tuning's), in units of
        the sampling spacing (mean nearest-neighbour distance of the sparser shape; 2.2 mm for
        fsaverage5): finer, OT would match one sampling onto the other and the spline would
        follow that noise. 3 spacings rather than 2 for the width: 10k same-vertex 95th
        percentile 0.93 -> 0.74 mm, remeshed mean 0.68 -> 0.58 mm.
    centre_cell : float
        Each spline pools its centres in cubic cells of this many kernel widths (0: one centre
        per point): the field moves by about 0.5 % of its variation at 0.5, and the number of
        centres follows the shape's size over the width, not the vertex count.
    lddmm : LDDMMOptions
        Geodesic shooting of the LDDMM levels.
    finetune : FinetuneConfig or None
        Fine-tuning of Sinkhorn divergence + energy after the levels, or None to skip it.
    working_points : int or None
        Shapes with more vertices are reduced to about this many (quadric decimation of a mesh,
        weighted grid clusters of a cloud) for the pre-alignment and the non-rigid levels; the
        final map is then evaluated at every vertex. This bounds the time and memory of a
        164k-vertex FreeSurfer surface near those of the 10k sample brain. None: every vertex
        (the cost then grows as N^2).
    engine : EngineOptions
        Epsilon-scaling, backend and device of every OT solve.
    compute_metrics : bool
        Compute the before/after metrics (point-to-surface queries cost a second or two at 10k).
    """

    preset: str = "nonrigid"
    normalise: bool = True
    prealign: PrealignConfig | None = PrealignConfig()
    model: str | None = "spline"
    levels: tuple[Level, ...] = _SPLINE_LEVELS
    reach: float | None = None
    cloud_reach: float | None = 0.2
    min_blur_spacings: float = 0.5
    min_width_spacings: float = 3.0
    centre_cell: float = 0.5
    lddmm: LDDMMOptions = LDDMMOptions()
    finetune: FinetuneConfig | None = None
    working_points: int | None = 12000
    engine: EngineOptions = EngineOptions()
    compute_metrics: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.preset, str):
            fail("preset", f"must be a name; got {self.preset!r}")
        check_bool("normalise", self.normalise)
        check_bool("compute_metrics", self.compute_metrics)
        check_choice("model", self.model, (*NONRIGID_MODELS, None))
        for name, cls in (("prealign", PrealignConfig), ("lddmm", LDDMMOptions), ("finetune", FinetuneConfig),
                          ("engine", EngineOptions)):
            value = getattr(self, name)
            if not isinstance(value, cls) and not (value is None and name in ("prealign", "finetune")):
                fail(name, f"must be a {cls.__name__}{' or None' if name in ('prealign', 'finetune') else ''}; "
                            f"got {type(value).__name__} (RegistrationConfig.from_dict reads plain data)")
        if not isinstance(self.levels, tuple) or not all(isinstance(lv, Level) for lv in self.levels):
            fail("levels", "must be a tuple of Level (RegistrationConfig.from_dict reads plain data)")
        if self.model is not None and not self.levels:
            fail("levels", "a non-rigid model needs at least one level")
        for name in ("reach", "cloud_reach"):
            check_float(name, getattr(self, name), 0.0, none=True, open_lo=True)
        check_float("min_blur_spacings", self.min_blur_spacings, 0.0, 1e3)
        check_float("min_width_spacings", self.min_width_spacings, 0.0, 1e3)
        check_float("centre_cell", self.centre_cell, 0.0, 2.0)
        check_int("working_points", self.working_points, 100, MAX_POINTS, none=True)

    # -------------------------------------------------------------------------------- presets
    @classmethod
    def from_preset(cls, name: str = "nonrigid", **overrides: Any) -> RegistrationConfig:
        """The configuration of a named preset, with any field overridden.

        * ``rigid``: OT pre-alignment by rotation + translation only;
        * ``affine``: rigid start search, then affine rounds;
        * ``nonrigid``: rigid pre-alignment, then coarse-to-fine Gaussian kernel splines ending
          at full resolution, normals in the OT cost (accurate; each step kept injective);
        * ``diffeomorphic``: rigid pre-alignment, then LDDMM geodesic shooting at the two
          coarse levels and the spline preset's two full-resolution levels in injective steps
          (a composition of diffeomorphisms).

        ``overrides`` are read like :meth:`from_dict`'s data over the preset: a nested field takes a
        dict of the fields to change (``prealign={"starts": 1}``, ``engine={"device": "cpu"}``),
        an instance (``prealign=PrealignConfig(model="affine")``), or None / False to switch an
        optional stage off.
        """
        return cls.from_dict(overrides, preset=name)

    @classmethod
    def from_dict(cls, data: dict, *, preset: str | None = None) -> RegistrationConfig:
        """A configuration from plain data (a TOML or JSON table), over ``preset`` (its value of
        ``data["preset"]`` by default, else ``nonrigid``); see the module docstring.

        Raises
        ------
        ConfigError
            (a ValueError) naming the field: an unknown field, a wrong type, a value out of range.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a registration configuration is a table of fields; got {type(data).__name__}")
        name = preset if preset is not None else data.get("preset", "nonrigid")
        base = _preset(name)
        data = {k: v for k, v in data.items() if k != "preset"}
        return from_data(base, data, "")

    def replace(self, **changes: Any) -> RegistrationConfig:
        """A copy with some fields changed, read like :meth:`from_preset`'s overrides."""
        return from_data(self, changes, "")

    def to_dict(self) -> dict:
        """Plain data (nested dicts, lists, None) that :meth:`from_dict` reads back to this configuration."""
        return to_data(self)

    def to_toml(self) -> str:
        """This configuration as a TOML file that ``shapeot register --config`` reads back."""
        from shapeot.core.version import version

        return to_toml(self.to_dict(), f"shapeot {version()} registration configuration (preset {self.preset})")

    @property
    def device(self) -> str:
        """``engine.device`` (the device the registration ran on, once resolved)."""
        return self.engine.device


@functools.lru_cache(maxsize=None)
def _preset(name: str) -> RegistrationConfig:
    """The preset ``name`` read from its TOML file (cached: configurations are immutable)."""
    import tomllib
    from importlib.resources import files

    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    data = tomllib.loads(files("shapeot.registration").joinpath("presets", f"{name}.toml").read_text())
    return from_data(RegistrationConfig(preset=name), data, "")


