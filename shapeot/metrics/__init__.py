"""shapeot.metrics: how close two shapes are, and how well-behaved a warp is. All in mm.

* :mod:`.distances`: symmetric Chamfer, Hausdorff and HD95, point-to-point (KD-tree) or
  point-to-surface (libigl's AABB tree); closest points on a triangle mesh;
* :mod:`.landmarks`: landmark target registration errors (TRE), per-vertex error summaries;
* :mod:`.warp`: area ratios (surface Jacobian), folded triangles, 3D Jacobians and their determinants;
* :mod:`.table`: every reported metric's key, label and unit (the front ends' tables read it).
"""
from .distances import (
           DistanceSummary,
           chamfer,
           closest_points_on_surface,
           directed_distances,
           distance_summary,
           hausdorff,
           hd95,
)
from .landmarks import ErrorSummary, error_summary, target_registration_errors
from .table import METRICS, Metric, metric, metric_rows
from .warp import WarpSummary, area_ratios, folded_triangles, jacobian_determinants, jacobians, warp_summary

__all__ = ["closest_points_on_surface", "chamfer", "hausdorff", "hd95", "directed_distances", "distance_summary",
           "DistanceSummary",
           "target_registration_errors", "error_summary", "ErrorSummary", "area_ratios", "folded_triangles",
           "jacobian_determinants", "jacobians", "warp_summary", "WarpSummary", "Metric", "METRICS", "metric",
           "metric_rows"]
