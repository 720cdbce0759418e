"""The stages of a registration and the state they pass along.

:func:`shapeot.register` normalises the shapes, reduces them to the working resolution into a
:class:`WorkingState`, runs the stages of :func:`stages_for` in order, each advancing the state,
then composes the maps and measures. A stage is an object with a ``name`` (its key in
``Registration.timings``), a ``share`` of the progress bar and one method,
``run(state, progress) -> state``; it is built from its part of the configuration:

* :class:`.prealign.PrealignStage` (``config.prealign``),
* :class:`.nonrigid.NonrigidStage` (``config.model``, ``config.levels``),
* :class:`.finetune.FinetuneStage` (``config.finetune``).

A new stage is a new class here and a field of :class:`RegistrationConfig`; ``register`` does
not change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from shapeot.core.progress import Progress
from shapeot.deform import LinearMap

from .config import RegistrationConfig
from .finetune import FinetuneStage
from .history import HistoryEntry
from .nonrigid import NonrigidStage
from .otstep import OTMatch
from .prealign import PrealignStage

__all__ = ["WorkingState", "Stage", "stages_for"]


@dataclass
class WorkingState:
    """The registration in progress, in the working frame (normalised units, working resolution).

    Attributes
    ----------
    x : (N, 3) float64
        The source's (reduced) vertices, moved by every map so far.
    a : (N,) float64
        Their weights (vertex areas, sum 1).
    y, b : (M, 3), (M,) float64
        The target's (reduced) vertices and weights.
    source_faces, target_faces : (F, 3) int64 or None
        Triangles of the reduced meshes (None: a point cloud).
    unit : float
        The length that the configuration's fractions multiply: 1 when the shapes are
        normalised, else the scale.
    prealign : LinearMap
        The pre-alignment (identity until a stage sets it).
    maps : list
        The non-rigid maps after it, in the order they apply.
    history : list of HistoryEntry
    last : OTMatch or None
        The last OT match, while it still describes ``x`` (correspondences at full resolution).
    full_resolution : bool
        Whether ``x`` holds every vertex of the source (no reduction to the working resolution).
    """

    x: np.ndarray
    a: np.ndarray
    y: np.ndarray
    b: np.ndarray
    source_faces: np.ndarray | None
    target_faces: np.ndarray | None
    unit: float
    full_resolution: bool = True
    prealign: LinearMap = field(default_factory=LinearMap.identity)
    maps: list = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    last: OTMatch | None = None
    _spacing: float | None = None

    @property
    def cloud(self) -> bool:
        """Whether the source or the target is a point cloud."""
        return self.source_faces is None or self.target_faces is None

    def spacing(self) -> float:
        """The sampling length: the mean nearest-neighbour distance of the sparser shape, measured
        once (after the pre-alignment, when the non-rigid stage first asks)."""
        if self._spacing is None:
            self._spacing = max(_spacing(self.x), _spacing(self.y))
        return self._spacing


def _spacing(points: np.ndarray) -> float:
    """Mean distance of a point to its nearest neighbour."""
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return 0.0
    return float(cKDTree(points).query(points, k=2)[0][:, 1].mean())


class Stage(Protocol):
    """What :func:`shapeot.register` needs of a stage (see the module docstring)."""

    name: str
    share: float

    def run(self, state: WorkingState, progress: Progress) -> WorkingState: ...


def stages_for(config: RegistrationConfig) -> list[Stage]:
    """The stages ``config`` asks for, in order."""
    stages: list[Stage] = []
    if config.prealign is not None:
        stages.append(PrealignStage(config.prealign, config.engine))
    if config.model is not None:
        stages.append(NonrigidStage(config))
        if config.finetune is not None:
            stages.append(FinetuneStage(config))
    return stages
