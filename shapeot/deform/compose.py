"""Composition of deformation models: the registration's ``deformation`` object."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

__all__ = ["Deformation", "Composition"]


class Deformation(Protocol):
    """What every model offers: move points, as arrays (mm) or as differentiable tensors."""

    def apply(self, points: np.ndarray) -> np.ndarray: ...

    def transform(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Composition:
    """maps[-1] o ... o maps[0]: apply the first map first.

    Attributes
    ----------
    maps : tuple of models (``LinearMap``, ``KernelSpline``, ``LDDMM``, ``Composition``)
    """

    maps: tuple = ()

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x) for an (N, 3) tensor, differentiable in x."""
        for m in self.maps:
            x = m.transform(x)
        return x

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Move any (N, 3) points (landmarks, a grid, another mesh; mm) as the source was moved."""
        with torch.no_grad():
            return self.transform(torch.as_tensor(np.array(points, dtype=np.float64))).numpy()

    def then(self, *maps) -> "Composition":
        """A new composition: this one followed by ``maps``."""
        return Composition(tuple(self.maps) + tuple(maps))

    def __len__(self) -> int:
        return len(self.maps)
