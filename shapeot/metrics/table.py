"""Every metric a registration reports, named once: its key, label, unit and when it is measured.

``Registration.metrics`` is ``{"before": {key: value}, "after": {key: value}}``; the command
line's table, the app's metrics table and the Slicer module's summary all take their rows from
:func:`metric_rows`, so a metric reads the same everywhere and a new one is added here once.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Metric", "METRICS", "metric", "metric_rows", "format_value"]


@dataclass(frozen=True)
class Metric:
    """One reported quantity.

    Attributes
    ----------
    key : str
        Its key in ``Registration.metrics["before"]`` / ``["after"]``.
    label : str
        What a person reads.
    unit : str
        "mm" (the shapes' length unit: the tables print the shapes' own), "" for ratios and
        counts.
    brief : bool
        In the short tables (the command line's, the Slicer summary), not only in the app's.
    when : {"both", "after"}
        Measured before and after the registration, or only of the result (the warp).
    """

    key: str
    label: str
    unit: str
    brief: bool = False
    when: str = "both"


METRICS: tuple[Metric, ...] = (
    Metric("chamfer", "Chamfer, point-to-point", "mm", True),
    Metric("chamfer_surface", "Chamfer, point-to-surface", "mm", True),
    Metric("hausdorff", "Hausdorff, point-to-point", "mm"),
    Metric("hausdorff_surface", "Hausdorff, point-to-surface", "mm", True),
    Metric("hd95", "HD95, point-to-point", "mm"),
    Metric("hd95_surface", "HD95, point-to-surface", "mm", True),
    Metric("tre_mean", "landmark TRE, mean", "mm", True),
    Metric("tre_max", "landmark TRE, max", "mm", True),
    Metric("area_ratio_min", "area ratio, min", "", True, "after"),
    Metric("area_ratio_max", "area ratio, max", "", True, "after"),
    Metric("area_ratio_p01", "area ratio, 1st percentile", "", False, "after"),
    Metric("area_ratio_p99", "area ratio, 99th percentile", "", False, "after"),
    Metric("jacobian_min", "Jacobian det, min", "", True, "after"),
    Metric("jacobian_max", "Jacobian det, max", "", True, "after"),
    Metric("folded", "folded triangles", "", True, "after"),
    Metric("folded_fraction", "folded triangles, fraction", "", False, "after"),
    Metric("strain_rms", "warp energy: strain RMS", "", True, "after"),
    Metric("strain_max", "warp strain, max", "", True, "after"),
    Metric("nonrigid_rms", "non-rigid displacement RMS", "mm", True, "after"),
)

_BY_KEY = {m.key: m for m in METRICS}


def metric(key: str) -> Metric:
    """The :class:`Metric` of ``key`` (KeyError naming the known keys)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no metric {key!r}; known: {', '.join(_BY_KEY)}") from None


def format_value(value) -> str:
    """A metric's value as the tables print it: 4 significant digits, "-" when absent."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def metric_rows(metrics: dict, *, units: str = "mm", brief: bool = False) -> list[tuple[Metric, str, str, str]]:
    """(metric, label with its unit, before, after) for each metric present in ``metrics``.

    ``units`` replaces "mm" in the labels (a shape in cm reports cm); ``brief`` keeps the short
    tables' metrics only. Keys the table does not know are left out (they are not metrics).
    """
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    rows = []
    for m in METRICS:
        if (brief and not m.brief) or (m.key not in before and m.key not in after):
            continue
        unit = units if m.unit == "mm" else m.unit
        label = f"{m.label} ({unit})" if unit else m.label
        rows.append((m, label, format_value(before.get(m.key)) if m.when == "both" else "",
                     format_value(after.get(m.key))))
    return rows
