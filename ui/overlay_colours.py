"""How an overlay's values become colours: the pure half of drawing overlays (no actor, no plotter).

An overlay (:class:`shapeot.shapes.Overlay`: thickness, curvature, a parcellation) is drawn with
a sequential colour map when its values are continuous, and with its label table's own colours
when they are labels (:func:`overlay_lookup_table`); its scalar bar is titled with its units when
they are known (:func:`overlay_title`). :mod:`shapeot.ui.overlay_layers` puts these on actors.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "OVERLAY_CMAP",
    "UNLABELLED_COLOUR",
    "OVERLAY_ARRAY",
    "overlay_units",
    "overlay_title",
    "overlay_values",
    "label_colours",
    "overlay_lookup_table",
]

#: Colour map of continuous overlays (sequential, perceptually uniform, colour-blind safe).
OVERLAY_CMAP = "viridis"
#: Colour of vertices without a label (-1 in an .annot) and of labels whose table gives none.
UNLABELLED_COLOUR = (128, 128, 128)
#: Prefix of the point array an overlay is drawn from (kept apart from the layers' own arrays).
OVERLAY_ARRAY = "overlay: "
# FreeSurfer's morph files carry no units; their names do (mris_make_surfaces, mris_curvature).
_MORPH_UNITS = {"thickness": "mm", "sulc": "mm", "curv": "1/mm", "area": "mm²", "volume": "mm³",
                "jacobian_white": "ratio", "jacobian": "ratio"}


def overlay_units(overlay) -> str | None:
    """Units of an overlay's values, if known: ``meta["units"]``, or FreeSurfer's convention for
    a morph name (lh.thickness, lh.sulc: mm; lh.curv: 1/mm; lh.area: mm²); None for labels."""
    if overlay.kind != "continuous":
        return None
    units = overlay.meta.get("units")
    if units:
        return str(units)
    name = overlay.name.lower()
    for hemi in ("lh.", "rh."):
        if name.startswith(hemi):
            name = name[len(hemi):]
    return _MORPH_UNITS.get(name.split(".")[0])


def overlay_title(overlay) -> str:
    """Scalar-bar title of an overlay: its name and, when known, its units ("lh.thickness (mm)")."""
    units = overlay_units(overlay)
    title = overlay.name + (f" ({units})" if units else "")
    if np.ndim(overlay.values) == 2:
        title += f" [1 of {overlay.values.shape[1]}]"
    return title


def overlay_values(overlay) -> np.ndarray:
    """The (N,) values drawn for an overlay: its first column when it holds several (a GIfTI
    with several data arrays, an MGH time series)."""
    v = np.asarray(overlay.values)
    return v[:, 0].copy() if v.ndim == 2 else v.copy()


def label_colours(overlay) -> dict[int, tuple[int, int, int]]:
    """RGB (0-255) of every label value of a label overlay, in value order.

    The label table's own colours (an .annot's colour table, a GIfTI label table) where it has
    them; other values (a .label file's 0/1, labels without a colour) get distinct colours of
    matplotlib's ``tab10``, unlabelled ones (value 0 of a .label file) grey. Negative values
    (-1: no label in an .annot) are not listed: they are drawn in :data:`UNLABELLED_COLOUR`.
    """
    if overlay.kind != "labels":
        raise ValueError(f"overlay {overlay.name!r} is {overlay.kind}, not labels")
    present = {int(v) for v in np.unique(overlay_values(overlay))}
    keys = sorted(k for k in present | set(overlay.label_names) | set(overlay.label_colors) if k >= 0)
    from matplotlib import colormaps

    cycle = colormaps["tab10"].colors
    out, spare = {}, 0
    for k in keys:
        if k in overlay.label_colors:
            out[k] = tuple(int(c) for c in overlay.label_colors[k][:3])
        elif overlay.format == "label" and k == 0:
            out[k] = UNLABELLED_COLOUR
        else:
            out[k] = tuple(int(round(255 * c)) for c in cycle[spare % len(cycle)])
            spare += 1
    return out


def overlay_lookup_table(overlay, values: np.ndarray | None = None):
    """How an overlay's values become colours: (lookup table, scalar range, categorical).

    Continuous values: :data:`OVERLAY_CMAP` over their 1st-99th percentiles (a few outliers,
    e.g. the zero thickness of the medial wall, would otherwise flatten the map); values outside
    take the end colours. Labels: an *indexed* table, one exact colour per label value with its
    name as annotation, so neighbouring values never blend along a ramp.

    Returns
    -------
    (pyvista.LookupTable, (float, float), bool)
    """
    import pyvista as pv

    values = overlay_values(overlay) if values is None else np.asarray(values)
    if overlay.kind == "labels":
        colours = label_colours(overlay)
        lut = pv.LookupTable()
        lut.IndexedLookupOn()
        lut.SetNumberOfTableValues(max(len(colours), 1))
        from vtkmodules.vtkCommonCore import vtkVariant

        for i, (value, rgb) in enumerate(colours.items()):
            # +0.25: VTK truncates colour * 255 on the way back to bytes; this lands on the byte.
            lut.SetTableValue(i, *((c + 0.25) / 255.0 for c in rgb), 1.0)
            lut.SetAnnotation(vtkVariant(int(value)), overlay.label_names.get(value, str(value)))
        lut.SetNanColor(*(c / 255.0 for c in UNLABELLED_COLOUR), 1.0)
        keys = list(colours) or [0]
        return lut, (float(min(keys)), float(max(keys))), True
    lo, hi = (float(x) for x in np.percentile(values, [1.0, 99.0]))
    if not hi > lo:
        lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    lut = pv.LookupTable(cmap=OVERLAY_CMAP, scalar_range=(lo, hi))
    return lut, (lo, hi), False
