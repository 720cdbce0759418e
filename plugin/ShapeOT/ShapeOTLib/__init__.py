"""ShapeOTLib: the bridge between 3D Slicer's MRML scene and shapeot.

Each module has one job and takes the MRML scene (or a node) as an argument; none of them
reaches for the global ``slicer.mrmlScene``, so all of them run against the real MRML classes
of the ``slicer-core`` wheel outside the Slicer application (``tests/plugin``):

* :mod:`.nodes`           model nodes <-> :class:`shapeot.Shape` (world RAS millimetres);
* :mod:`.segmentations`   a segment's closed-surface representation -> Shape;
* :mod:`.transforms`      a registration's deformation -> a grid or linear transform node;
* :mod:`.markups`         markups control points <-> (N, 3) arrays;
* :mod:`.display`         the displacement colour map of output models;
* :mod:`.runs`            Register, Match and Template on nodes, outputs as new nodes;
* :mod:`.install`         the check and the installer of shapeot in Slicer's Python.

Importing this package imports nothing: ``shapeot`` itself is imported by the functions
that need it, so the module loads in a Slicer where shapeot is not installed yet.
"""

__all__ = ["nodes", "segmentations", "transforms", "markups", "display", "runs", "install"]
