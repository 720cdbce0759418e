"""The shapes panel and the 3D scene follow the shape model both ways."""
from __future__ import annotations

import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

import numpy as np
from PyQt5.QtCore import Qt

import shapeot


def test_shapes_panel_writes_the_model_and_follows_it(window, brain_files):
    lh, rh = (shapeot.load(p) for p in brain_files)
    a, b = window.shapes.add(lh), window.shapes.add(rh)
    panel, scene = window.shapes_panel, window.scene
    assert panel.list.count() == 2
    # view -> model -> actor
    panel.list.item(0).setCheckState(Qt.Unchecked)
    assert not a.visible and not scene.shape_actor(a).GetVisibility()
    panel.list.setCurrentRow(1)
    panel.opacity.setValue(40)
    assert b.opacity == 0.4 and scene.shape_actor(b).prop.opacity == 0.4
    # model -> view and actor
    a.visible = True
    assert panel.list.item(0).checkState() == Qt.Checked and scene.shape_actor(a).GetVisibility()
    b.opacity = 0.7
    assert panel.opacity.value() == 70
    b.colour = "#ff0000"
    assert np.allclose(scene.shape_actor(b).prop.color.float_rgb, (1.0, 0.0, 0.0))
    # roles: combo -> model, model -> combo
    panel.target_combo.activated.emit(1)
    assert window.shapes.target is a and panel.target_combo.currentIndex() == 1
    window.shapes.source = b
    assert panel.source_combo.currentIndex() == 2
    # mirror adds a copy; remove drops the shape, its actor and its role
    panel.list.setCurrentRow(0)
    panel.mirror_button.click()
    assert len(window.shapes) == 3 and window.shapes[2].name.endswith("(mirrored)")
    np.testing.assert_allclose(window.shapes[2].shape.points, lh.points * [-1, 1, 1])
    panel.list.setCurrentRow(1)
    panel.remove_button.click()
    assert [i.name for i in window.shapes] == [a.name, window.shapes[1].name] and window.shapes.source is None
    assert panel.source_combo.currentIndex() == 0 and not window.params.register_button.isEnabled()
    assert b not in scene._shape_actors
