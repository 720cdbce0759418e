"""A segment of a segmentation node -> its closed surface as a :class:`shapeot.Shape`.

Slicer computes a segment's surface with the converter rule "Binary labelmap to closed
surface" (``vtkBinaryLabelmapToClosedSurfaceConversionRule``): discrete flying edges on the
labelmap in voxel (IJK) space at the segment's label value, optional decimation and
windowed-sinc smoothing ("Smoothing factor", 0.5 by default: pass band 10^(-4 x factor)), then
the image-to-world matrix. Vertices of the unsmoothed surface sit halfway between a voxel
inside and one outside, like shapeot's own reader (marching cubes at level 0.5 on the binary
mask), so the two surfaces coincide up to how ambiguous voxel configurations are triangulated.

The input node is never modified: when it already holds a closed surface and no parameter is
overridden, that surface (the one Slicer displays) is read; otherwise the segment is copied
into a private ``vtkSegmentation`` and converted there. The Slicer application registers the
converter rules at start-up; a bare ``slicer-core`` scene does not, so
:func:`ensure_converter_rules` registers the four labelmap/closed-surface rules when missing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .nodes import arrays_from_polydata, transform_to_world, world_polydata

if TYPE_CHECKING:
    from shapeot import Shape

__all__ = ["CLOSED_SURFACE", "ensure_converter_rules", "segment_ids", "segment_polydata", "shape_from_segment"]

CLOSED_SURFACE = "Closed surface"

_RULES = (
    "vtkBinaryLabelmapToClosedSurfaceConversionRule",
    "vtkClosedSurfaceToBinaryLabelmapConversionRule",
    "vtkFractionalLabelmapToClosedSurfaceConversionRule",
    "vtkClosedSurfaceToFractionalLabelmapConversionRule",
)


def ensure_converter_rules() -> list[str]:
    """Register Slicer's labelmap <-> closed-surface converter rules that are not registered yet.

    Returns
    -------
    list of str
        Class names of the rules registered by this call (empty inside the Slicer application,
        where the Segmentations module registers them at start-up).
    """
    import slicer

    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    present = {rule.GetClassName() for rule in factory.GetConverterRules()}
    added = []
    for name in _RULES:
        cls = getattr(slicer, name, None)
        if cls is not None and name not in present:
            factory.RegisterConverterRule(cls())
            added.append(name)
    return added


def segment_ids(node) -> list[tuple[str, str]]:
    """(segment ID, segment name) of every segment of a ``vtkMRMLSegmentationNode``, in order."""
    segmentation = node.GetSegmentation()
    out = []
    for i in range(segmentation.GetNumberOfSegments()):
        sid = segmentation.GetNthSegmentID(i)
        out.append((sid, segmentation.GetSegment(sid).GetName()))
    return out


def _resolve(node, segment: str | None) -> str:
    """The ID of ``segment`` (an ID or a name; None: the only segment)."""
    ids = segment_ids(node)
    if not ids:
        raise ValueError(f"segmentation {node.GetName()!r} has no segment")
    if segment is None:
        if len(ids) == 1:
            return ids[0][0]
        listing = ", ".join(f"{n!r} ({i})" for i, n in ids)
        raise ValueError(f"segmentation {node.GetName()!r} holds several segments; choose one of {listing}")
    for sid, name in ids:
        if segment in (sid, name):
            return sid
    listing = ", ".join(f"{n!r} ({i})" for i, n in ids)
    raise ValueError(f"segment {segment!r} is not in {node.GetName()!r}; segments: {listing}")


def segment_polydata(node, segment: str | None = None, *, smoothing: float | None = None,
                     decimation: float | None = None, world: bool = True):
    """The closed surface of one segment (a new ``vtkPolyData``), in world RAS mm.

    Parameters
    ----------
    node : vtkMRMLSegmentationNode
        Left unchanged.
    segment : str, optional
        Segment ID or name; None when the segmentation holds a single segment.
    smoothing : float in [0, 1], optional
        Slicer's "Smoothing factor" of the labelmap -> surface conversion (0: none, 0.5: Slicer's
        default). None: the node's own setting, and its existing closed surface when it has one.
    decimation : float in [0, 1), optional
        Slicer's "Decimation factor" (fraction of triangles removed). None: the node's setting.
    world : bool, default: True
        Apply the segmentation node's transform to world, as hardening would.
    """
    import slicer
    import vtk

    sid = _resolve(node, segment)
    source = node.GetSegmentation()
    if smoothing is None and decimation is None and source.ContainsRepresentation(CLOSED_SURFACE):
        surface = source.GetSegment(sid).GetRepresentation(CLOSED_SURFACE)
    else:
        ensure_converter_rules()
        work = slicer.vtkSegmentation()
        work.SetSourceRepresentationName(source.GetSourceRepresentationName())
        work.CopyConversionParameters(source)
        if not work.CopySegmentFromSegmentation(source, sid):
            raise ValueError(f"segment {sid!r} of {node.GetName()!r} could not be copied")
        if smoothing is not None:
            if not 0.0 <= smoothing <= 1.0:
                raise ValueError(f"smoothing must be in [0, 1]; got {smoothing}")
            work.SetConversionParameter("Smoothing factor", repr(float(smoothing)))
        if decimation is not None:
            if not 0.0 <= decimation < 1.0:
                raise ValueError(f"decimation must be in [0, 1); got {decimation}")
            work.SetConversionParameter("Decimation factor", repr(float(decimation)))
        if not work.CreateRepresentation(CLOSED_SURFACE):
            raise ValueError(
                f"no closed surface could be made from segment {sid!r} of {node.GetName()!r} "
                f"(source representation {source.GetSourceRepresentationName()!r})"
            )
        surface = work.GetSegment(sid).GetRepresentation(CLOSED_SURFACE)
    if surface is None or surface.GetNumberOfPoints() == 0:
        raise ValueError(f"segment {sid!r} of {node.GetName()!r} is empty")
    out = vtk.vtkPolyData()
    out.DeepCopy(surface)
    return world_polydata(out, transform_to_world(node) if world else None)


def shape_from_segment(node, segment: str | None = None, *, smoothing: float | None = None,
                       decimation: float | None = None, world: bool = True) -> "Shape":
    """The closed surface of one segment as a :class:`shapeot.Shape` (see :func:`segment_polydata`).

    The shape's name is "<node name>: <segment name>" and its source is
    ``Source(<node name>, <segment name>)``.
    """
    from shapeot import Shape
    from shapeot.shapes import Source

    sid = _resolve(node, segment)
    poly = segment_polydata(node, sid, smoothing=smoothing, decimation=decimation, world=world)
    points, faces, _ = arrays_from_polydata(poly)
    segment_name = node.GetSegmentation().GetSegment(sid).GetName()
    return Shape(points, faces, name=f"{node.GetName()}: {segment_name}",
                 source=Source(node.GetName() or "", segment_name))
