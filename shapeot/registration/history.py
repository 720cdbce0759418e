"""One record per iteration of a pipeline: :class:`HistoryEntry`.

Registrations (``Registration.history``) and templates (``Template.history``) keep a list of
these; the app's convergence plot, the command line and the benchmarks read them. ``value`` is
what the stage watches, and ``quantity`` / ``unit`` say what that is, so a reader never guesses
from the stage's name; the optional fields say where in the stage the entry was taken.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["HistoryEntry", "QUANTITIES", "history_dicts"]

#: stage -> (quantity, unit) of its entries' ``value``. "scale^2": squared fractions of the
#: registration's normalisation scale (the source's RMS radius).
QUANTITIES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "prealign": ("OT value", "scale^2"),
    "nonrigid": ("mean squared distance to the OT targets", "scale^2"),
    "finetune": ("Sinkhorn divergence + deformation energy", "scale^2"),
    "procrustes": ("weighted OT value of the subjects to the mean", "mm^2"),
    "template": ("template move along the normals (RMS)", "mm"),
})


@dataclass(frozen=True)
class HistoryEntry:
    """One iteration of a stage.

    Attributes
    ----------
    stage : {"prealign", "nonrigid", "finetune", "procrustes", "template"}
    step : int
        Index of the entry within its stage and phase (0-based): the x of a convergence plot.
    value : float
        What the stage watches: see :data:`QUANTITIES` (``quantity``, ``unit``).
    phase : str or None
        Pre-alignment: "search" (the starts' rounds, each start on its own) or "refine" (the
        winner's rounds).
    start : int or None
        Pre-alignment: the starting rotation (index into the cube's 24 rotations).
    level : int or None
        Non-rigid stage: the level (0 = coarsest).
    blur : float or None
        OT blur of this iteration (fraction of the scale for registrations).
    marginal_error : float or None
        Relative L1 error of the plan's marginals (non-rigid rounds).
    points : int or None
        Points matched (non-rigid rounds).
    strain : float or None
        Largest strain |Dv| of the step (non-rigid rounds).
    substeps : int or None
        Injective Euler steps the step was split into (non-rigid rounds).
    extra : mapping of str to float
        Stage-specific numbers (templates: ``move_rms_mm``, ``move_max_mm``,
        ``deformation_rms_mm``, ``seconds``; Procrustes: ``change_mm``).
    """

    stage: str
    step: int
    value: float
    phase: str | None = None
    start: int | None = None
    level: int | None = None
    blur: float | None = None
    marginal_error: float | None = None
    points: int | None = None
    strain: float | None = None
    substeps: int | None = None
    extra: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage not in QUANTITIES:
            raise ValueError(f"stage must be one of {', '.join(QUANTITIES)}; got {self.stage!r}")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @property
    def quantity(self) -> str:
        """What ``value`` measures."""
        return QUANTITIES[self.stage][0]

    @property
    def unit(self) -> str:
        """The unit of ``value``."""
        return QUANTITIES[self.stage][1]

    def with_(self, **changes) -> HistoryEntry:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain data for JSON: the fields that are set, ``quantity`` and ``unit``."""
        out = {"stage": self.stage, "step": self.step, "value": self.value, "quantity": self.quantity,
               "unit": self.unit}
        for f in dataclasses.fields(self)[3:]:
            v = getattr(self, f.name)
            if f.name == "extra":
                out.update(v)
            elif v is not None:
                out[f.name] = v
        return out


def history_dicts(history) -> list[dict]:
    """``[entry.to_dict() for entry in history]``: a history as plain data."""
    return [h.to_dict() for h in history]
