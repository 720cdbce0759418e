"""The desktop app: a bad file shows a non-modal error naming the defect, the app stays usable;
an export never replaces files it was not asked to."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")


def _visible_boxes(window):
    from PyQt5.QtWidgets import QMessageBox

    return [b for b in window.findChildren(QMessageBox) if b.isVisible()]


@pytest.mark.parametrize("name,content,fragment", [
    ("nan.vtk", "# vtk DataFile Version 4.2\nx\nASCII\nDATASET POLYDATA\nPOINTS 3 double\n0 0 0 nan 1 0 0 1 0\n"
                "POLYGONS 1 4\n3 0 1 2\n", "VTK could not read it as .vtk"),
    ("random.ply", b"\x00\x82garbage" * 40, "is not a valid PLY file (it does not start with 'ply')"),
    ("cut.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nvn 0 0 1\nvn 0 0 1\n",
     "has vertex normals or texture coordinates but no faces"),
])
def test_a_bad_file_shows_an_error_and_the_app_goes_on(make_window, qtbot, tmp_path, ico, name, content, fragment):
    window = make_window()
    bad = tmp_path / name
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    with qtbot.waitSignal(window.error_shown, timeout=30_000) as blocker:
        window.open_paths([bad])
    title, message = blocker.args
    assert title == "Open failed" and str(bad) in message and fragment in message
    [box] = _visible_boxes(window)  # shown without blocking: this line runs while it is open
    assert fragment in box.text()
    box.close()
    assert len(window.shapes) == 0
    ico.save(tmp_path / "good.vtp")
    with qtbot.waitSignal(window.tasks.idle, timeout=30_000):
        window.open_paths([tmp_path / "good.vtp"])
    assert [item.shape.n_points for item in window.shapes] == [ico.n_points]


def test_registration_export_refuses_existing_files(make_window, qtbot, tmp_path, ico_files, monkeypatch):
    from PyQt5.QtWidgets import QFileDialog, QMessageBox

    import shapeot

    window = make_window()
    reg = shapeot.register(shapeot.load(ico_files[0]), shapeot.load(ico_files[1]), "rigid")
    window._registered(reg)
    out = tmp_path / "out"
    out.mkdir()
    (out / "reg_correspondences.csv").write_text("precious")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out / "reg.vtp"), "")))
    asked = []

    def answer(reply):
        def question(parent, title, text, *args, **kwargs):
            asked.append(text)
            return reply
        return staticmethod(question)

    # the menu asks before replacing; "No" leaves everything as it was
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.No))
    window.actions_by_name["export_registration"].trigger()
    assert "reg_correspondences.csv" in asked[-1] and window.errors == []
    assert sorted(p.name for p in out.iterdir()) == ["reg_correspondences.csv"]
    assert (out / "reg_correspondences.csv").read_text() == "precious"
    # the API refuses existing files unless told to overwrite
    with pytest.raises(FileExistsError, match="reg_correspondences.csv exists; pass --overwrite"):
        window.export("registration", out / "reg.vtp")
    assert (out / "reg_correspondences.csv").read_text() == "precious"
    # "Yes" replaces the registration's own files, and only them
    (out / "unrelated.txt").write_text("keep")
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.Yes))
    window.actions_by_name["export_registration"].trigger()
    assert window.errors == [] and (out / "reg_correspondences.csv").read_text().startswith("source_index")
    assert (out / "unrelated.txt").read_text() == "keep"
    for name in ("reg.vtp", "reg_displacement.csv", "reg_prealign.txt", "reg_summary.json", "unrelated.txt"):
        (out / name).unlink()
    (out / "reg_correspondences.csv").unlink()
    written = window.export("registration", out / "fresh.vtp")
    assert [p.name for p in written] == ["fresh.vtp", "fresh_displacement.csv", "fresh_correspondences.csv",
                                         "fresh_prealign.txt", "fresh_summary.json"]
    rows = np.loadtxt(out / "fresh_displacement.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(rows[:, 1:4], reg.displacement)
