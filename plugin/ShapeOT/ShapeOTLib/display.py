"""Colour maps of output models: a point scalar shown with a perceptual colour table.

Slicer's application creates its colour tables at start-up (the "Viridis" table has the node ID
``vtkMRMLColorTableNodeFileViridis.txt``); a bare MRML scene has none. :func:`color_node` uses
Slicer's Viridis where it exists and otherwise adds one "ShapeOT Viridis" table to the scene
(a singleton, reused by every output), sampled from 17 anchors of matplotlib's viridis (CC0).
"""
from __future__ import annotations

import numpy as np

__all__ = ["SLICER_VIRIDIS_ID", "color_node", "show_point_scalar"]

SLICER_VIRIDIS_ID = "vtkMRMLColorTableNodeFileViridis.txt"
_SINGLETON = "ShapeOTViridis"
_VIRIDIS = np.array([
    (0.2670, 0.0049, 0.3294), (0.2823, 0.0950, 0.4173), (0.2788, 0.1755, 0.4834),
    (0.2590, 0.2515, 0.5247), (0.2297, 0.3224, 0.5457), (0.1994, 0.3876, 0.5546),
    (0.1727, 0.4488, 0.5579), (0.1490, 0.5081, 0.5573), (0.1276, 0.5669, 0.5506),
    (0.1206, 0.6258, 0.5335), (0.1579, 0.6838, 0.5017), (0.2461, 0.7389, 0.4520),
    (0.3692, 0.7889, 0.3829), (0.5160, 0.8312, 0.2943), (0.6785, 0.8637, 0.1895),
    (0.8456, 0.8873, 0.0997), (0.9932, 0.9062, 0.1439),
])  # (17, 3) RGB


def color_node(scene):
    """A colour table node for displacement magnitudes: Slicer's Viridis, or ShapeOT's own."""
    node = scene.GetNodeByID(SLICER_VIRIDIS_ID)
    if node is not None:
        return node
    node = scene.GetSingletonNode(_SINGLETON, "vtkMRMLColorTableNode")
    if node is not None:
        return node
    import slicer

    node = slicer.vtkMRMLColorTableNode()
    node.SetSingletonTag(_SINGLETON)
    node.SetName("ShapeOT Viridis")
    node.SetTypeToUser()
    n = 256
    node.SetNumberOfColors(n)
    x = np.linspace(0.0, 1.0, len(_VIRIDIS))
    t = np.linspace(0.0, 1.0, n)
    rgb = np.stack([np.interp(t, x, _VIRIDIS[:, c]) for c in range(3)], axis=1)
    for i, (r, g, b) in enumerate(rgb):
        node.SetColor(i, f"{i}", float(r), float(g), float(b), 1.0)
    node.SetAttribute("Category", "ShapeOT")
    scene.AddNode(node)
    return node


def show_point_scalar(model_node, array_name: str, *, scalar_range: tuple[float, float] | None = None) -> None:
    """Colour a model by one of its point arrays (a scalar) with :func:`color_node`'s table.

    Parameters
    ----------
    model_node : vtkMRMLModelNode
        Must hold the point array ``array_name`` and a display node.
    array_name : str
    scalar_range : (float, float), optional
        Manual range of the colour map; default [0, max of the array].
    """
    import slicer
    import vtk

    poly = model_node.GetPolyData()
    array = poly.GetPointData().GetArray(array_name) if poly is not None else None
    if array is None:
        raise ValueError(f"model {model_node.GetName()!r} has no point array {array_name!r}")
    display = model_node.GetDisplayNode()
    if display is None:
        model_node.CreateDefaultDisplayNodes()
        display = model_node.GetDisplayNode()
    if scalar_range is None:
        hi = float(array.GetRange(-1 if array.GetNumberOfComponents() > 1 else 0)[1])
        scalar_range = (0.0, hi if hi > 0 else 1.0)
    display.SetActiveScalar(array_name, vtk.vtkAssignAttribute.POINT_DATA)
    display.SetAndObserveColorNodeID(color_node(model_node.GetScene()).GetID())
    display.SetScalarRangeFlag(slicer.vtkMRMLDisplayNode.UseManualScalarRange)
    display.SetScalarRange(*scalar_range)
    display.SetScalarVisibility(True)
