"""Overlays (FreeSurfer morph files, .annot parcellations) drawn as colour maps on a shape's own actor.

The references are independent of the app: the files are written and read back with nibabel, the
drawn values and colours are read from the VTK mapper (its input, and ``MapScalars``: the colours
it renders), and the continuous ramp is checked against matplotlib's viridis.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

import nibabel.freesurfer as fs
import pyvista as pv
from PyQt5.QtWidgets import QMessageBox
from shapeot.ui.overlay_colours import OVERLAY_ARRAY, UNLABELLED_COLOUR
from vtkmodules.util.numpy_support import vtk_to_numpy

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meshes"
LH = SAMPLES / "fsaverage5_lh_pial.gii"
N = 10242  # fsaverage5 vertices
# (name, RGB) of a small parcellation; the annot's colour table stores them with transparency 0
PARCELS = [("unknown", (25, 5, 25)), ("precentral", (60, 20, 220)), ("postcentral", (220, 20, 20)),
           ("insula", (255, 192, 32)), ("superiorfrontal", (20, 220, 160))]


@pytest.fixture(scope="module")
def overlay_files(tmp_path_factory) -> dict[str, Path]:
    """lh.thickness (10,242 values), lh.aparc.annot (5 labels, some vertices unlabelled) and a
    thickness file of another mesh (1,000 values)."""
    folder = tmp_path_factory.mktemp("overlays")
    rng = np.random.default_rng(19)
    fs.write_morph_data(folder / "lh.thickness", rng.uniform(1.0, 4.5, N).astype(np.float32))
    labels = rng.integers(0, len(PARCELS), N).astype(np.int32)
    labels[rng.choice(N, 300, replace=False)] = -1
    ctab = np.array([[*rgb, 0, 0] for _, rgb in PARCELS], dtype=np.int32)
    fs.write_annot(str(folder / "lh.aparc.annot"), labels, ctab, [n for n, _ in PARCELS], fill_ctab=True)
    fs.write_morph_data(folder / "other.thickness", rng.uniform(1.0, 4.5, 1000).astype(np.float32))
    return {"thickness": folder / "lh.thickness", "annot": folder / "lh.aparc.annot",
            "wrong": folder / "other.thickness"}


def _open_brain(window, qtbot, gui):
    gui.run_until_idle(qtbot, window, lambda: window.open_paths([LH]), 60)
    [item] = window.shapes
    assert item.shape.n_points == N and window.shapes_panel.selected() is item
    return item


def _drawn(actor):
    """(array the mapper colours by, RGB the mapper renders (N, 3) uint8), in the mesh's vertex order."""
    mapper = actor.GetMapper()
    mapper.Update()
    data = pv.wrap(mapper.GetInput())
    order = np.argsort(data.point_data["vtkOriginalPointIds"]) if "vtkOriginalPointIds" in data.point_data \
        else np.arange(data.n_points)
    name = mapper.GetArrayName()
    values = np.asarray(data.point_data[name])[order] if name in data.point_data else None
    colours = None
    if mapper.GetScalarVisibility():
        mapped = mapper.MapScalars(1.0)
        if mapped is None:  # continuous values are interpolated, then looked up in a texture of the table
            lut = mapper.GetLookupTable()
            lut.SetRange(mapper.GetScalarRange())
            mapped = lut.MapScalars(mapper.GetInput().GetPointData().GetArray(name), 0, -1)
        colours = vtk_to_numpy(mapped)[:, :3][order]
    return values, colours


def test_thickness_colours_the_shape_and_plain_colour_takes_it_back(window, qtbot, gui, overlay_files):
    item = _open_brain(window, qtbot, gui)
    assert window.actions_by_name["overlay"].isEnabled()
    gui.run_until_idle(qtbot, window, lambda: window.open_overlay(overlay_files["thickness"]), 30)
    assert list(item.overlays) == ["lh.thickness"] and item.colour_by == "lh.thickness"

    actor, scene = window.scene.shape_actor(item), window.scene
    window.scene.render()
    expected = fs.read_morph_data(str(overlay_files["thickness"])).astype(np.float64)
    values, colours = _drawn(actor)
    np.testing.assert_array_equal(values, expected)  # the file's values, vertex by vertex
    np.testing.assert_array_equal(scene.overlay_mesh(item).active_scalars, expected)
    mapper = actor.GetMapper()
    assert mapper.GetScalarVisibility() and not mapper.GetLookupTable().GetIndexedLookup()
    # a sequential ramp: the thickest vertex is drawn in viridis' last colour, the thinnest in its first
    from matplotlib import colormaps

    viridis = np.round(255 * np.asarray(colormaps["viridis"]([0.0, 1.0]))[:, :3])
    np.testing.assert_allclose(colours[np.argmin(expected)], viridis[0], atol=2)
    np.testing.assert_allclose(colours[np.argmax(expected)], viridis[1], atol=2)
    assert len(np.unique(colours, axis=0)) > 100
    assert "lh.thickness (mm)" in window.plotter.scalar_bars and scene.overlay_bar(item) == "lh.thickness (mm)"

    # a second overlay: the panel offers both and the plain colour
    gui.run_until_idle(qtbot, window, lambda: window.open_overlay(overlay_files["annot"], item), 30)
    combo = window.shapes_panel.colour_by
    assert [combo.itemText(i) for i in range(combo.count())] == ["plain colour", "lh.thickness", "lh.aparc.annot"]
    assert combo.currentText() == "lh.aparc.annot" and "lh.thickness (mm)" not in window.plotter.scalar_bars
    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    assert item.colour_by == "lh.thickness"
    np.testing.assert_array_equal(_drawn(actor)[0], expected)

    # back to the plain colour: no scalars drawn, no overlay array, no scalar bar, the shape's colour
    combo.setCurrentIndex(0)
    combo.activated.emit(0)
    window.scene.render()
    assert item.colour_by is None and not mapper.GetScalarVisibility()
    assert not any(k.startswith(OVERLAY_ARRAY) for k in pv.wrap(mapper.GetInput()).point_data.keys())
    assert scene.overlay_mesh(item).active_scalars is None
    assert scene.overlay_bar(item) is None and not any(t.startswith("lh.") for t in window.plotter.scalar_bars.keys())
    assert np.allclose(actor.prop.color.float_rgb, pv.Color(item.colour).float_rgb)
    assert set(item.overlays) == {"lh.thickness", "lh.aparc.annot"}  # still there to switch back to


def test_annot_is_drawn_in_its_colour_table_colours(window, qtbot, gui, overlay_files):
    item = _open_brain(window, qtbot, gui)
    gui.run_until_idle(qtbot, window, lambda: window.open_overlay(overlay_files["annot"]), 30)
    assert item.colour_by == "lh.aparc.annot"
    labels, ctab, names = fs.read_annot(str(overlay_files["annot"]))
    assert [n.decode() for n in names] == [n for n, _ in PARCELS]
    window.scene.render()
    values, colours = _drawn(window.scene.shape_actor(item))
    np.testing.assert_array_equal(values, labels)
    labelled = labels >= 0
    np.testing.assert_array_equal(colours[labelled], ctab[labels[labelled], :3])
    np.testing.assert_array_equal(colours[~labelled], np.broadcast_to(UNLABELLED_COLOUR, (int((~labelled).sum()), 3)))
    # categorical: one colour per label, no ramp between them
    assert len(np.unique(colours, axis=0)) == len(PARCELS) + 1
    mapper = window.scene.shape_actor(item).GetMapper()
    assert mapper.GetLookupTable().GetIndexedLookup() and not mapper.GetInterpolateScalarsBeforeMapping()
    assert window.scene.overlay_bar(item) == "lh.aparc.annot"
    # Mirror L/R keeps the overlays (same vertices); the copy's bar is told apart by its shape's name
    copy = window.mirror_item(item)
    assert list(copy.overlays) == ["lh.aparc.annot"] and copy.colour_by == "lh.aparc.annot"
    assert window.scene.overlay_bar(copy) == f"lh.aparc.annot · {copy.name}"
    window.shapes.remove(copy)
    assert f"lh.aparc.annot · {copy.name}" not in window.plotter.scalar_bars.keys()
    # View ▸ Colour by lists the shape's choices and switches
    window._fill_colour_menu()
    texts = [a.text() for a in window.colour_menu.actions() if not a.isSeparator()]
    assert texts[-2:] == ["plain colour", "lh.aparc.annot"]
    [plain] = [a for a in window.colour_menu.actions() if a.text() == "plain colour"]
    plain.trigger()
    assert item.colour_by is None and not mapper.GetScalarVisibility()


def test_overlay_of_another_mesh_shows_an_error_and_changes_nothing(window, qtbot, gui, overlay_files):
    item = _open_brain(window, qtbot, gui)
    with qtbot.waitSignal(window.error_shown, timeout=30_000) as blocker:
        window.open_overlay(overlay_files["wrong"])
    title, message = blocker.args
    assert title == "Load overlay failed"
    assert "other.thickness" in message and "1000" in message and str(N) in message
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1 and "other.thickness" in boxes[0].text()  # non-modal: the app goes on
    boxes[0].close()
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=5_000)
    assert dict(item.overlays) == {} and item.colour_by is None
    assert not window.scene.shape_actor(item).GetMapper().GetScalarVisibility()
    # a missing file and no selection: messages too, never a crash
    window.errors.clear()
    with qtbot.waitSignal(window.error_shown, timeout=30_000) as blocker:
        window.open_overlay(overlay_files["wrong"].with_name("lh.missing"), item)
    assert "lh.missing" in blocker.args[1]
    for box in window.findChildren(QMessageBox):
        box.close()


def test_wrong_overlay_in_batch_mode_goes_to_stderr(make_window, qtbot, gui, overlay_files, capsys):
    window = make_window(batch=True)
    _open_brain(window, qtbot, gui)
    with qtbot.waitSignal(window.error_shown, timeout=30_000):
        window.open_overlay(overlay_files["wrong"])
    err = capsys.readouterr().err
    assert "Load overlay failed" in err and "other.thickness" in err and "1000" in err and str(N) in err
    assert not [b for b in window.findChildren(QMessageBox) if b.isVisible()]


def test_warped_source_takes_the_source_overlays(window, qtbot, gui, quick_registration, brain_files, tmp_path):
    reg = quick_registration
    gui.run_until_idle(qtbot, window, lambda: window.open_paths(brain_files), 60)
    source = window.shapes.source
    n = source.shape.n_points
    values = np.linspace(0.0, 1.0, n).astype(np.float32)
    fs.write_morph_data(tmp_path / "lh.sulc", values)
    gui.run_until_idle(qtbot, window, lambda: window.open_overlay(tmp_path / "lh.sulc", source), 30)
    window._registered(reg)
    scene = window.scene
    assert scene.overlays("warped").keys() == {"lh.sulc"} and scene.colour_by("warped") == "lh.sulc"
    scene.set_layer_visible("warped", True)
    scene.render()
    np.testing.assert_array_equal(_drawn(scene.overlay_actor("warped"))[0], values.astype(np.float64))
    bar = scene.overlay_bar("warped")
    assert bar.startswith("lh.sulc (mm)") and window.plotter.scalar_bars[bar].GetVisibility()
    # the layer check box hides the bar with the layer; plain colour drops it
    window.results_panel.checkboxes["warped"].setChecked(False)
    assert not window.plotter.scalar_bars[bar].GetVisibility()
    scene.set_colour_by("warped", None)
    assert not scene.overlay_actor("warped").GetMapper().GetScalarVisibility() and scene.overlay_bar("warped") is None
    # File ▸ Load overlay onto the result: colours the warped source and shows it
    assert window.actions_by_name["overlay_result"].isEnabled()
    gui.run_until_idle(qtbot, window, lambda: window.open_overlay(tmp_path / "lh.sulc", "warped"), 30)
    assert scene.colour_by("warped") == "lh.sulc" and scene.layers["warped"].visible
    # revealed through the scene, so its check box follows, and the overlay's bar shows with it
    assert window.results_panel.checkboxes["warped"].isChecked()
    assert window.plotter.scalar_bars[scene.overlay_bar("warped")].GetVisibility()


def test_titles_units_and_label_colours_without_a_window(tmp_path):
    """The builders need no display: units from FreeSurfer names, colours of label tables."""
    import nibabel as nib
    from shapeot.ui.overlay_colours import label_colours, overlay_lookup_table, overlay_title

    from shapeot.shapes.overlays import Overlay, read_overlay

    assert overlay_title(Overlay("lh.thickness", np.ones(4))) == "lh.thickness (mm)"
    assert overlay_title(Overlay("rh.curv", np.ones(4))) == "rh.curv (1/mm)"
    assert overlay_title(Overlay("scores.mgh", np.ones((4, 2)))) == "scores.mgh [1 of 2]"
    # a .label file: 0 (unlabelled) grey, the label in a colour of its own, drawn categorically
    label = tmp_path / "lh.cortex.label"
    label.write_text("#!ascii label\n2\n1 0 0 0 0\n3 0 0 0 0\n")
    ov = read_overlay(label, surface=5)
    colours = label_colours(ov)
    assert colours[0] == UNLABELLED_COLOUR and colours[1] != UNLABELLED_COLOUR and set(colours) == {0, 1}
    lut, _, categorical = overlay_lookup_table(ov)
    assert categorical and lut.GetIndexedLookup() and lut.GetNumberOfAnnotatedValues() == 2
    # a GIfTI label array: the label table's RGBA
    table = nib.gifti.GiftiLabelTable()
    for key, rgba in ((0, (0.0, 0.0, 0.0, 1.0)), (7, (1.0, 0.5, 0.0, 1.0))):
        lab = nib.gifti.GiftiLabel(key=key, red=rgba[0], green=rgba[1], blue=rgba[2], alpha=rgba[3])
        lab.label = f"region{key}"
        table.labels.append(lab)
    img = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.array([0, 7, 7, 0, 7], np.int32),
                                                                 intent="NIFTI_INTENT_LABEL",
                                                                 datatype="NIFTI_TYPE_INT32")])
    img.labeltable = table
    nib.save(img, tmp_path / "lh.regions.label.gii")
    assert label_colours(read_overlay(tmp_path / "lh.regions.label.gii", surface=5)) == {0: (0, 0, 0),
                                                                                          7: (255, 128, 0)}
