"""Bad and unusual inputs: folders with unreadable files and scans without the label, one
subject, mixed units, point clouds, subject weights, cancellation; and label maps end to end."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import fast_config


def _ball(path, radius: float, label: int = 1, size: int = 24, spacing: float = 1.0) -> None:
    """A NIfTI label map (1 mm voxels unless ``spacing``) holding a ball of ``label``."""
    import nibabel as nib

    g = (np.indices((size, size, size)) - (size - 1) / 2.0) * spacing
    vol = ((g ** 2).sum(0) <= radius ** 2).astype(np.uint8) * label
    nib.save(nib.Nifti1Image(vol, np.diag([spacing, spacing, spacing, 1.0])), path)


@pytest.fixture
def scans(tmp_path):
    """Three balls of label 1 (radii 6, 7, 8 mm), a scan with label 2 only, a corrupt scan, a note."""
    for i, r in enumerate((6.0, 7.0, 8.0)):
        _ball(tmp_path / f"ball_{i}.nii.gz", r)
    _ball(tmp_path / "other_label.nii.gz", 7.0, label=2)
    (tmp_path / "corrupt.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    (tmp_path / "README.txt").write_text("scans\n")
    (tmp_path / ".hidden.gii").write_text("ignored\n")
    return tmp_path


def test_load_folder_reports_what_it_skipped(scans):
    from shapeot.templates import load_folder

    folder = load_folder(scans, label=1)
    assert [p.split("/")[-1] for p in folder.paths] == ["ball_0.nii.gz", "ball_1.nii.gz", "ball_2.nii.gz"]
    assert len(folder) == 3 and all(s.source.label == 1 and s.units == "mm" for s in folder)
    reasons = {s.path.split("/")[-1]: s.reason for s in folder.skipped}
    assert set(reasons) == {"other_label.nii.gz", "corrupt.nii.gz", "README.txt"}
    assert reasons["other_label.nii.gz"].startswith("label 1 is not in the scan; labels present")
    assert "not a mesh or a label map" in reasons["README.txt"]
    assert "skipped corrupt.nii.gz" in folder.report()
    # A pattern narrows the files; the string "1" is the label value 1.
    assert len(load_folder(scans, pattern="ball_*", label="1").skipped) == 0


def test_load_folder_fails_below_two_shapes(scans, tmp_path_factory):
    from shapeot.templates import TemplateInputError, load_folder

    expected = (r"1 shape\(s\) loaded \(label 2 for the scans\), a template needs at least two; skipped: "
                r".*ball_0.nii.gz: label 2 is not in the scan; labels present: 1")
    with pytest.raises(TemplateInputError, match=expected) as e:
        load_folder(scans, label=2)
    assert len(e.value.folder.shapes) == 1 and len(e.value.folder.skipped) == 5
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_folder(scans / "nowhere")
    with pytest.raises(NotADirectoryError, match="is a file"):
        load_folder(scans / "README.txt")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(TemplateInputError, match="0 shape"):
        load_folder(empty)


def test_template_of_label_maps(scans):
    """Balls of radii 6, 7, 8 mm: the similarity Procrustes brings them to their mean size, so the
    template is a ball of the mean RMS radius."""
    import shapeot
    from shapeot.templates.procrustes import rms_radius

    folder = shapeot.load_folder(scans, pattern="ball_*", label=1)
    tpl = shapeot.template(folder, fast_config(procrustes_starts=1, iterations=1))
    p, w = np.asarray(tpl.shape.points), np.asarray(tpl.shape.weights)
    r = np.linalg.norm(p - w @ p, axis=1)
    sizes = [rms_radius(s.points, s.weights) for s in folder]
    assert abs(rms_radius(p, w) - np.mean(sizes)) < 0.03 * np.mean(sizes)
    assert r.std() < 0.05 * r.mean()
    assert tpl.shape.faces is not None and tpl.shape.source is None


def test_template_input_errors(cohort):
    import shapeot
    from shapeot.shapes import Shape
    from shapeot.templates import TemplateInputError

    a, b = cohort[0], cohort[1]
    with pytest.raises(TemplateInputError, match="at least two shapes; got 1"):
        shapeot.template([a])
    with pytest.raises(TemplateInputError, match=r"different units \(subject_01.gii in mm, subject_02.gii in cm\)"):
        shapeot.template([a, b.replace(points=b.points / 10, units="cm")])
    clouds = [Shape(np.asarray(s.points)) for s in (a, b)]
    with pytest.raises(TemplateInputError, match="at least one triangle mesh"):
        shapeot.template(clouds)
    with pytest.raises(TemplateInputError, match="weights must be 2 finite non-negative"):
        shapeot.template([a, b], weights=[1.0, -1.0])
    with pytest.raises(TemplateInputError, match="not a shapeot.Shape"):
        shapeot.template([a, np.zeros((3, 3))])
    with pytest.raises(ValueError, match="iterations: must be between 1 and 1,000; got 0"):
        shapeot.TemplateConfig(iterations=0)
    with pytest.raises(ValueError, match="preset: must be one of"):
        shapeot.TemplateConfig(preset="rigid")


def test_cancel_mid_iteration(cohort):
    import shapeot
    from shapeot.core.errors import Cancelled

    seen = []

    def progress(fraction, message):
        seen.append(message)
        return not message.startswith("iteration 1/")

    with pytest.raises(Cancelled):
        shapeot.template(list(cohort)[:3], fast_config(), progress=progress)
    assert seen[-1].startswith("iteration 1/") and not any(m.startswith("iteration 2/") for m in seen)


def test_subject_weights(cohort):
    """All the weight on one subject: the template becomes that subject (in the template frame)."""
    import shapeot
    from shapeot.metrics import chamfer
    from shapeot.templates.tasks import aligned

    three = list(cohort)[:3]
    tpl = shapeot.template(three, fast_config(iterations=1), weights=[0.0, 0.0, 5.0])
    np.testing.assert_allclose(tpl.weights, [0, 0, 1])
    d = [chamfer(tpl.shape, aligned(s, m), surface=True) for s, m in zip(three, tpl.alignments)]
    assert d[2] < 0.5 and d[2] < 0.5 * min(d[:2]), d
    assert tpl.medoid == 2  # the medoid minimises the weighted distances: the only weighted subject
