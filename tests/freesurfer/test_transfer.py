"""Overlays through the correspondences, against a known warp (truth computed from the warp)."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import thickness

FIGURES: dict = {}


def _truth(subjects, reg):
    """Truth on the target's vertices: the source position each target vertex came from."""
    back = subjects["back"](reg.target.points)
    return thickness(back), subjects["parcels"](back)


@pytest.mark.parametrize("target, min_agree", [("tgt", 0.95), ("rem", 0.90)])
@pytest.mark.parametrize("use_plan", [True, False])
def test_transfer_thickness_and_parcels(subjects, registrations, target, min_agree, use_plan):
    from shapeot.registration.transfer import transfer_overlay
    from shapeot.shapes.freesurfer import load_subject_overlay

    reg = registrations[target]
    src_dir = subjects["root"] / "src"
    thick = load_subject_overlay(src_dir, "lh.thickness", reg.source)
    annot = load_subject_overlay(src_dir, "lh.aparc.annot", reg.source)
    t_true, l_true = _truth(subjects, reg)

    t_out = transfer_overlay(thick, reg, use_plan=use_plan)
    a_out = transfer_overlay(annot, reg, use_plan=use_plan)
    assert t_out.n_vertices == reg.target.n_points and a_out.n_vertices == reg.target.n_points
    assert t_out.meta["transfer"]["method"] == ("plan" if use_plan else "kernel")
    corr = float(np.corrcoef(t_out.values, t_true)[0, 1])
    # annot values are indices into the names; the parcels' truth is the index of the same name
    agree = float(np.mean(a_out.values == l_true))
    FIGURES[(target, use_plan)] = (corr, agree)
    print(f"{target} plan={use_plan}: correlation {corr:.4f}, label agreement {agree:.4f}")
    assert corr >= 0.95
    assert agree >= min_agree
    # the values are a weighted average: never outside the source's range
    assert t_out.values.min() >= thick.values.min() - 1e-9 and t_out.values.max() <= thick.values.max() + 1e-9


def test_plan_is_used_when_it_matches_the_vertices(registrations):
    reg = registrations["tgt"]
    from shapeot.registration.transfer import _plan_of

    plan = _plan_of(reg)
    assert plan is not None and tuple(plan.shape) == (reg.source.n_points, reg.target.n_points)


def test_shuffled_same_vertices_recover_the_permutation(subjects, registrations):
    """Target vertex j is source vertex perm[j]: vertex ids moved as an overlay come back exactly
    for nearly every vertex (labels: heaviest partner)."""
    from shapeot.registration.transfer import transfer_values

    reg = registrations["tgt"]
    ids, _ = transfer_values(np.arange(reg.source.n_points), reg, kind="labels", k=4)
    assert np.mean(ids == subjects["perm"]) >= 0.9


def test_transferred_annot_written_in_its_own_format(tmp_path, subjects, registrations):
    from nibabel.freesurfer import read_annot

    from shapeot.registration.transfer import transfer_overlay
    from shapeot.shapes.freesurfer import load_subject_overlay
    from shapeot.shapes.overlays import write_overlay

    reg = registrations["tgt"]
    annot = load_subject_overlay(subjects["root"] / "src", "lh.aparc.annot", reg.source)
    out = transfer_overlay(annot, reg)
    path = write_overlay(out, tmp_path / "lh.aparc.annot")
    labels, ctab, names = read_annot(str(path))
    assert [n.decode() for n in names] == subjects["parcels"].names
    np.testing.assert_array_equal(labels, out.values)
    np.testing.assert_array_equal(ctab[:, :3], np.asarray(annot.meta["ctab"])[:, :3])
    _, l_true = _truth(subjects, reg)
    assert np.mean(labels == l_true) >= 0.95


def test_wrong_vertex_count_is_refused(subjects, registrations):
    from shapeot.registration.transfer import transfer_overlay
    from shapeot.shapes import ShapeFileError
    from shapeot.shapes.overlays import Overlay

    with pytest.raises(ShapeFileError, match="vertices"):
        transfer_overlay(Overlay("x", np.zeros(17)), registrations["tgt"])
