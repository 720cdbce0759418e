"""Transform files: exact round trips of every model, and applying a saved map to files."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest


def _deformation(seed=0):
    from shapeot.deform import LDDMM, Composition, KernelSpline, LinearMap, smooth_displacement

    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    m = np.eye(4)
    m[:3, :3] = q * np.sign(np.linalg.det(q)) * 1.03
    m[:3, 3] = rng.normal(size=3) * 5
    c = rng.normal(size=(40, 3)) * 30
    nw = smooth_displacement(c, c + rng.normal(size=(40, 3)), rng.random(40) + 0.1, 12.0)  # kernel smoothing
    rkhs = KernelSpline(c, rng.normal(size=(40, 3)) * 0.3, 15.0, None)
    lddmm = LDDMM(c[:15], rng.normal(size=(15, 3)) * 0.2, 20.0, 4)
    return Composition((LinearMap(m), nw, Composition((rkhs, lddmm)), LinearMap(np.eye(4))))


def test_round_trip_is_exact(tmp_path):
    from shapeot.deform.serialize import load_transform, save_transform

    d = _deformation()
    path = save_transform(d, tmp_path / "t.npz")
    back = load_transform(path)
    x = np.random.default_rng(1).normal(size=(500, 3)) * 40
    assert np.max(np.abs(back.apply(x) - d.apply(x))) <= 1e-12
    # the same tree, arrays bit-identical
    assert type(back.maps[2].maps[1]).__name__ == "LDDMM" and back.maps[2].maps[1].n_steps == 4
    np.testing.assert_array_equal(back.maps[1].masses, d.maps[1].masses)
    assert back.maps[2].maps[0].masses is None and back.maps[1].width == d.maps[1].width


def test_file_is_plain_npz_with_documented_header(tmp_path):
    from shapeot.deform.serialize import save_transform

    path = save_transform(_deformation(), tmp_path / "t.npz", meta={"source": "bert"})
    with np.load(path, allow_pickle=False) as z:  # no pickles: readable anywhere
        header = json.loads(str(z["header"]))
        keys = set(z.files)
    assert header["format"] == "shapeot-transform" and header["version"] == 1
    assert header["units"] == "mm" and header["frame"] == "RAS" and header["meta"] == {"source": "bert"}
    assert header["model"]["class"] == "Composition"
    assert {f"a{i}" for i in range(len(keys) - 1)} | {"header"} == keys


def test_refuses_overwrite_and_foreign_files(tmp_path):
    from shapeot.deform import LinearMap
    from shapeot.deform.serialize import TransformFileError, load_transform, save_transform

    p = save_transform(LinearMap(np.eye(4)), tmp_path / "t.npz")
    with pytest.raises(FileExistsError):
        save_transform(LinearMap(np.eye(4)), p)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(TransformFileError, match="header"):
        load_transform(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(TransformFileError):
        load_transform(tmp_path / "junk.npz")


def test_new_model_class_is_one_line(tmp_path):
    from shapeot.deform.serialize import load_transform, register_model, save_transform

    @dataclasses.dataclass(frozen=True)
    class Shift:
        offset: np.ndarray
        scale: float = 1.0

        def apply(self, p):
            return np.asarray(p) * self.scale + self.offset

    with pytest.raises(TypeError, match="register"):
        save_transform(Shift(np.ones(3)), tmp_path / "s.npz")
    register_model(Shift)
    back = load_transform(save_transform(Shift(np.array([1.0, 2, 3]), 2.0), tmp_path / "s2.npz"))
    np.testing.assert_array_equal(back.apply(np.zeros((1, 3))), [[1.0, 2.0, 3.0]])


def test_apply_to_mesh_points_csv_and_landmarks(tmp_path, small_lh):
    from shapeot.cli import read_landmarks
    from shapeot.deform.serialize import apply_transform, save_transform
    from shapeot.shapes import load

    d = _deformation()
    t = save_transform(d, tmp_path / "t.npz")
    # a mesh: same faces, vertex order, moved points
    small_lh.save(tmp_path / "lh.gii")
    out = apply_transform(t, tmp_path / "lh.gii", tmp_path / "lh_moved.vtp")
    moved = load(out)
    np.testing.assert_allclose(moved.points, d.apply(small_lh.points), atol=1e-4)  # VTP float32
    np.testing.assert_array_equal(moved.faces, small_lh.faces)
    # a points CSV with a header: x, y, z replaced, other columns and the header kept
    pts = np.asarray(small_lh.points)[:5]
    lines = ["name,x,y,z,weight"] + [f"p{i},{p[0]},{p[1]},{p[2]},{i * 0.5}" for i, p in enumerate(pts)]
    (tmp_path / "pts.csv").write_text("\n".join(lines) + "\n")
    apply_transform(t, tmp_path / "pts.csv", tmp_path / "pts_moved.csv")
    rows = [r.split(",") for r in (tmp_path / "pts_moved.csv").read_text().splitlines()]
    assert rows[0] == ["name", "x", "y", "z", "weight"] and rows[3][0] == "p2" and rows[3][4] == "1.0"
    np.testing.assert_allclose(np.array([[float(c) for c in r[1:4]] for r in rows[1:]]), d.apply(pts), atol=1e-5)
    # landmarks in the CLI's format (read back with the CLI's own reader)
    (tmp_path / "marks.csv").write_text("# landmarks\n" + "\n".join(f"{i},{p[0]},{p[1]},{p[2]}"
                                                                    for i, p in enumerate(pts)) + "\n")
    apply_transform(t, tmp_path / "marks.csv", tmp_path / "marks_moved.csv")
    np.testing.assert_allclose(read_landmarks(tmp_path / "marks_moved.csv"), d.apply(pts), atol=1e-5)
    assert (tmp_path / "marks_moved.csv").read_text().startswith("# landmarks")
    # Slicer markups declared LPS: converted to RAS for the map and back
    lps = pts * [-1, -1, 1]
    fcsv = "# Markups fiducial file version = 4.11\n# CoordinateSystem = LPS\n" + "\n".join(
        f"F-{i},{p[0]},{p[1]},{p[2]},0,0,0,1,1,1,0,F-{i},," for i, p in enumerate(lps)) + "\n"
    (tmp_path / "m.fcsv").write_text(fcsv)
    apply_transform(d, tmp_path / "m.fcsv", tmp_path / "m_moved.fcsv")
    got = read_landmarks(tmp_path / "m_moved.fcsv")
    np.testing.assert_allclose(got * [-1, -1, 1], d.apply(pts), atol=1e-5)
    with pytest.raises(FileExistsError):
        apply_transform(t, tmp_path / "pts.csv", tmp_path / "pts_moved.csv")


def test_apply_to_freesurfer_surface_keeps_tkr_frame(tmp_path, small_lh):
    """lh.white with c_ras: moved in scanner RAS, written back in tkr-RAS with its volume_info."""
    from nibabel.freesurfer import read_geometry, write_geometry

    from shapeot.deform import LinearMap
    from shapeot.deform.serialize import apply_transform

    from .conftest import CRAS, volume_info

    pts, faces = np.asarray(small_lh.points), np.asarray(small_lh.faces)
    write_geometry(str(tmp_path / "lh.white"), pts - CRAS, faces.astype(np.int32), volume_info=volume_info())
    m = np.eye(4)
    m[:3, 3] = [3.0, -2.0, 1.0]
    apply_transform(LinearMap(m), tmp_path / "lh.white", tmp_path / "lh.white.moved")
    coords, f2, info = read_geometry(str(tmp_path / "lh.white.moved"), read_metadata=True)
    np.testing.assert_allclose(coords, pts + [3.0, -2.0, 1.0] - CRAS, atol=1e-4)
    np.testing.assert_allclose(info["cras"], CRAS)
    np.testing.assert_array_equal(f2, faces)


@pytest.mark.slow
def test_registration_transform_moves_like_the_registration(tmp_path, registrations):
    from shapeot.deform.serialize import load_transform, save_transform

    reg = registrations["tgt"]
    back = load_transform(save_transform(reg.deformation, tmp_path / "reg.npz"))
    np.testing.assert_allclose(back.apply(reg.source.points), reg.warped.points, atol=1e-9)
