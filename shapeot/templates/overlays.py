"""Overlays of a cohort on its template: each subject's per-vertex data read at the template's
corresponded points, then summarised per template vertex (a group map).

Subject s's registration carries the template onto it (``Template.registrations[s].warped``: the
template's vertices on the aligned subject), so the subject's overlay is read at those points
(:func:`shapeot.registration.transfer.sample_values`) and every subject's values sit on the
template's vertices. Continuous overlays (thickness, curvature) give the weighted mean and
standard deviation over subjects; label overlays (parcellations) the most frequent label and the
share of subjects that agree with it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shapeot.registration.transfer import sample_values
from shapeot.shapes.overlays import Overlay

from .result import Template

__all__ = ["template_overlays", "subject_overlays"]


def subject_overlays(tpl: Template, name: str) -> list[Overlay]:
    """Overlay ``name`` (``lh.thickness``, ``lh.aparc.annot``) of every subject, read from the
    FreeSurfer subject folder each was loaded from.

    Raises
    ------
    ValueError
        For a subject that was not read from a subject folder (the message names it).
    """
    from shapeot.shapes.freesurfer import load_subject_overlay

    out = []
    for subject, label in zip(tpl.subjects, tpl.names):
        folder = subject.meta.get("freesurfer_subject")
        if folder is None:
            raise ValueError(f"overlay {name}: subject {label} was not read from a FreeSurfer subject folder, "
                             "where overlays are looked up by name")
        out.append(load_subject_overlay(folder, name, subject))
    return out


def template_overlays(tpl: Template, overlays: Sequence[Overlay], *, k: int = 8) -> dict[str, Overlay]:
    """The subjects' overlays (one per subject, on its own vertices) summarised on the template.

    Returns
    -------
    dict
        Continuous: ``{"mean": Overlay, "sd": Overlay}`` (weighted by the subjects' weights, mm or
        the overlay's units); labels: ``{"mode": Overlay, "agreement": Overlay}`` (the most
        frequent label, weighted, and the weight share of subjects with it, 0-1). One value per
        template vertex each.
    """
    if len(overlays) != len(tpl.subjects):
        raise ValueError(f"{len(overlays)} overlays for {len(tpl.subjects)} subjects")
    kind = overlays[0].kind
    w = np.asarray(tpl.weights, dtype=np.float64)
    stack = []
    for s, (ov, reg) in enumerate(zip(overlays, tpl.registrations)):
        ov.check_vertices(tpl.subjects[s].n_points)
        stack.append(sample_values(ov.values, reg.target, np.asarray(reg.warped.points), kind=kind, k=k))
    values = np.stack(stack)  # (S, N) or (S, N, c)
    name = overlays[0].name
    base = dict(source=None, format=overlays[0].format, meta={"template_of": [o.name for o in overlays]})
    if kind == "continuous":
        mean = np.tensordot(w, values, axes=1)
        sd = np.sqrt(np.tensordot(w, (values - mean) ** 2, axes=1))
        return {"mean": Overlay(f"{name}.mean", mean, "continuous", **base),
                "sd": Overlay(f"{name}.sd", sd, "continuous", **base)}
    labels = values if values.ndim == 2 else values[..., 0]
    candidates = np.unique(labels)
    votes = np.stack([(labels == c).T @ w for c in candidates], axis=1)  # (N, L)
    mode = candidates[np.argmax(votes, axis=1)]
    return {"mode": Overlay(f"{name}.mode", mode, "labels", overlays[0].label_names, overlays[0].label_colors,
                            **base),
            "agreement": Overlay(f"{name}.agreement", votes.max(1) / max(w.sum(), 1e-300), "continuous",
                                 source=None, format="morph" if overlays[0].format in ("annot", "label") else
                                 overlays[0].format)}
