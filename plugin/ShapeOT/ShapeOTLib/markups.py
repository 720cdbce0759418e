"""Markups point lists <-> (N, 3) arrays in world RAS millimetres.

Outputs of the module that are points go into ``vtkMRMLMarkupsFiducialNode`` point lists:
landmarks carried through a registration (same labels as the input landmarks), and a sample
of OT correspondences (the matched target point of some source vertices, each described by the
vertex it comes from). Output lists are locked, so a stray click does not move a result.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["points_from_markups", "labels_from_markups", "markups_from_points", "spread_indices"]


def points_from_markups(node, *, world: bool = True) -> np.ndarray:
    """(N, 3) float64 positions (mm) of the control points of a markups node.

    ``world=True`` gives positions after the node's parent transforms (what Slicer displays).
    """
    n = node.GetNumberOfControlPoints()
    out = np.zeros((n, 3), dtype=np.float64)
    p = [0.0, 0.0, 0.0]
    for i in range(n):
        if world:
            node.GetNthControlPointPositionWorld(i, p)
        else:
            node.GetNthControlPointPosition(i, p)
        out[i] = p
    return out


def labels_from_markups(node) -> list[str]:
    """The labels of the control points of a markups node, in order."""
    return [node.GetNthControlPointLabel(i) for i in range(node.GetNumberOfControlPoints())]


def markups_from_points(scene, points: np.ndarray, *, name: str, labels: Sequence[str] | None = None,
                        descriptions: Sequence[str] | None = None, locked: bool = True,
                        color: tuple[float, float, float] | None = None):
    """A new ``vtkMRMLMarkupsFiducialNode`` with one control point per row of ``points``.

    Parameters
    ----------
    scene : vtkMRMLScene
    points : (N, 3) float array, mm (world)
    name : str
        Node name.
    labels, descriptions : sequences of N str, optional
        Control point labels (default "<name>-<i>") and descriptions.
    locked : bool, default: True
        Lock the list against interactive edits.
    color : (r, g, b) in [0, 1], optional
        Selected colour of the display node.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    node.CreateDefaultDisplayNodes()
    was = node.StartModify()
    try:
        for i, p in enumerate(pts):
            label = labels[i] if labels is not None else f"{name}-{i + 1}"
            node.AddControlPointWorld(float(p[0]), float(p[1]), float(p[2]), label)
            if descriptions is not None:
                node.SetNthControlPointDescription(i, descriptions[i])
        node.SetLocked(bool(locked))
    finally:
        node.EndModify(was)
    if color is not None and node.GetDisplayNode() is not None:
        node.GetDisplayNode().SetSelectedColor(*color)
    return node


def spread_indices(points: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` points spread over ``points`` (greedy farthest-point sampling).

    Deterministic: starts from the point nearest the centroid. Returns all indices when
    ``count >= len(points)``.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if count >= n:
        return np.arange(n)
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    chosen = np.empty(count, dtype=np.int64)
    chosen[0] = int(np.argmin(((pts - pts.mean(axis=0)) ** 2).sum(axis=1)))
    dist = ((pts - pts[chosen[0]]) ** 2).sum(axis=1)
    for k in range(1, count):
        chosen[k] = int(np.argmax(dist))
        dist = np.minimum(dist, ((pts - pts[chosen[k]]) ** 2).sum(axis=1))
    return chosen
