"""Round trips through every mesh format, checked by shapeot and by an independent reader."""
from __future__ import annotations

import os

import numpy as np
import pytest

import shapeot.shapes as shapes
from shapeot.shapes import Shape

# extension -> (float32 on disk?, holds point data?)
FORMATS = {
    ".vtk": (False, True),
    ".vtp": (False, True),
    ".ply": (False, True),
    ".obj": (False, False),
    ".off": (False, False),
    ".stl": (True, False),
    ".gii": (True, True),
    ".gii.gz": (True, True),
    "freesurfer": (False, False),
}


def _name(ext: str) -> str:
    return "lh.test" if ext == "freesurfer" else f"mesh{ext}"


def _independent_read(path: str, ext: str) -> tuple[np.ndarray, np.ndarray]:
    """Points and triangles read back by another library than the one shapeot wrote with."""
    if ext in (".vtp", ".vtk"):
        import pyvista as pv

        mesh = pv.read(path)
        return np.asarray(mesh.points), np.asarray(mesh.regular_faces)
    if ext in (".ply", ".obj", ".off", ".stl"):
        import trimesh

        mesh = trimesh.load(path, process=False, maintain_order=True, force="mesh")
        return np.asarray(mesh.vertices), np.asarray(mesh.faces)
    if ext in (".gii", ".gii.gz"):
        import nibabel as nib

        img = nib.load(path)
        return img.darrays[0].data, img.darrays[1].data
    from nibabel.freesurfer import read_geometry

    return read_geometry(path)


def _triangles_as_coordinates(points, faces):
    """Each triangle as its sorted corner coordinates: comparable whatever the vertex order."""
    tri = np.round(np.asarray(points)[np.asarray(faces)], 4)  # (F, 3, 3)
    tri = np.sort(tri.view([("", tri.dtype)] * 3).reshape(len(tri), 3), axis=1).view(tri.dtype)
    return np.sort(tri.reshape(len(tri), 9), axis=0)


@pytest.mark.parametrize("ext", list(FORMATS))
def test_mesh_round_trip(sphere, ext, tmp_path):
    if ext in (".vtk", ".vtp"):
        pytest.importorskip("vtkmodules", reason="VTK (shapeot[vtk]) writes and checks VTK polydata")
    float32, holds_data = FORMATS[ext]
    path = str(tmp_path / _name(ext))
    sphere.save(path)
    back = shapes.load(path)
    atol = 1e-5 if float32 else 1e-12
    assert back.source.path == path
    if ext == ".stl":  # STL stores loose triangles: vertex order is not kept, geometry is
        assert back.n_points == sphere.n_points
        np.testing.assert_allclose(
            _triangles_as_coordinates(back.points, back.faces),
            _triangles_as_coordinates(sphere.points, sphere.faces), atol=1e-3)
    else:
        np.testing.assert_allclose(back.points, sphere.points, atol=atol)
        np.testing.assert_array_equal(back.faces, sphere.faces)
    if holds_data:
        assert set(back.point_data) == set(sphere.point_data)
        for key, value in sphere.point_data.items():
            np.testing.assert_allclose(back.point_data[key], value, rtol=1e-6 if float32 else 0)
    # An independent reader sees the same surface.
    points, faces = _independent_read(path, ext)
    np.testing.assert_allclose(
        _triangles_as_coordinates(points, faces), _triangles_as_coordinates(sphere.points, sphere.faces), atol=1e-3)


@pytest.mark.parametrize("ext", [".ply", ".vtp", ".vtk", ".gii", ".obj", ".off"])
def test_point_cloud_round_trip(ext, tmp_path):
    if ext in (".vtk", ".vtp"):
        pytest.importorskip("vtkmodules", reason="VTK (shapeot[vtk]) writes VTK polydata")
    rng = np.random.default_rng(2)
    cloud = Shape(rng.normal(size=(40, 3)) * 20, point_data={"value": rng.normal(size=(40, 3))})
    path = tmp_path / f"cloud{ext}"
    cloud.save(path)
    back = shapes.load(path)
    assert back.faces is None
    np.testing.assert_allclose(back.points, cloud.points, atol=1e-5 if ext == ".gii" else 1e-12)
    np.testing.assert_allclose(back.weights, np.full(40, 1 / 40))
    if ext in (".ply", ".vtp", ".vtk", ".gii"):
        np.testing.assert_allclose(back.point_data["value"], cloud.point_data["value"], rtol=1e-6)
    if ext == ".ply":  # a PLY point cloud as plyfile-level readers see it: vertices, no faces
        import trimesh

        pc = trimesh.load(path, process=False)
        np.testing.assert_allclose(np.asarray(pc.vertices), cloud.points)


def test_cleaning_on_load(tmp_path):
    # A quad, a duplicated vertex (v6 = v2) and an unreferenced vertex (v7).
    text = """v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 2 0.5 0
v 5 5 5
v 1 1 0
v 9 9 9
f 1 2 3 4
f 2 5 7
f 4/1 7/1 6/1
"""
    path = tmp_path / "dirty.obj"
    path.write_text(text)
    shape = shapes.load(path)
    # Expected by hand: v6 merged into v2 (0-based 2), v7 (9,9,9) dropped, quad fanned.
    np.testing.assert_allclose(shape.points, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0.5, 0], [5, 5, 5]])
    expected = {(0, 1, 2), (0, 2, 3), (1, 4, 2), (3, 2, 5)}
    assert {tuple(f) for f in shape.faces.tolist()} == expected


def test_freesurfer_volume_info_gives_scanner_ras(sphere, tmp_path):
    from nibabel.freesurfer import read_geometry, write_geometry

    cras = np.array([1.5, -20.0, 7.25])
    info = {
        "head": np.array([2, 0, 20], dtype=np.int32), "valid": "1  # volume info valid",
        "filename": "orig.mgz", "volume": np.array([256, 256, 256]), "voxelsize": np.array([1.0, 1.0, 1.0]),
        "xras": np.array([-1.0, 0, 0]), "yras": np.array([0, 0, -1.0]), "zras": np.array([0, 1.0, 0]),
        "cras": cras,
    }
    tkr = np.asarray(sphere.points)
    path = str(tmp_path / "lh.pial")
    write_geometry(path, tkr, sphere.faces.astype(np.int32), volume_info=info)
    shape = shapes.load(path)
    np.testing.assert_allclose(shape.points, tkr + cras, atol=1e-5)  # tkr-RAS + c_ras = scanner RAS
    out = str(tmp_path / "rh.white")
    shape.save(out)
    coords, _, info_back = read_geometry(out, read_metadata=True)
    np.testing.assert_allclose(coords, tkr, atol=1e-5)
    np.testing.assert_allclose(info_back["cras"], cras)


def test_save_refuses_to_overwrite_and_is_atomic(sphere, tmp_path, monkeypatch):
    path = tmp_path / "mesh.ply"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        sphere.save(path)
    assert path.read_bytes() == b"precious"
    sphere.save(path, overwrite=True)
    assert shapes.load(path).n_points == sphere.n_points
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # usual permissions, not a temp file's

    from shapeot.shapes import meshes

    def half_then_fail(target, *args):
        with open(target, "wb") as fh:
            fh.write(b"ply\nformat binary_little_endian 1.0\n")  # a half-written file
        raise OSError("disk full")

    monkeypatch.setattr(meshes, "write_mesh", half_then_fail)
    with pytest.raises(shapes.ShapeFileError, match="disk full"):
        sphere.save(tmp_path / "new.ply")
    assert sorted(os.listdir(tmp_path)) == ["mesh.ply"]  # no target, no temporary file


def test_formats_that_cannot_hold_the_shape(sphere, tmp_path):
    cloud = Shape(sphere.points)
    with pytest.raises(shapes.ShapeFileError, match="point cloud"):
        cloud.save(tmp_path / "cloud.stl")
    with pytest.raises(shapes.UnsupportedFormatError):
        sphere.save(tmp_path / "mesh.nii.gz")
    assert os.listdir(tmp_path) == []


def test_missing_vtk_gives_install_hint(sphere, tmp_path, monkeypatch):
    pytest.importorskip("vtkmodules", reason="needs real VTK files to read without VTK")
    sphere.save(tmp_path / "a.vtp")
    sphere.save(tmp_path / "polydata.vtk")
    from shapeot.shapes import vtkio

    def missing(purpose):
        raise shapes.MissingDependencyError(f"{purpose} needs VTK, which is not installed: pip install 'shapeot[vtk]'")

    monkeypatch.setattr(vtkio, "import_vtk", missing)
    for name in ("a.vtp", "polydata.vtk"):
        with pytest.raises(shapes.MissingDependencyError, match=r"pip install 'shapeot\[vtk\]'"):
            shapes.load(tmp_path / name)
    with pytest.raises(shapes.MissingDependencyError, match=r"pip install 'shapeot\[vtk\]'"):
        sphere.save(tmp_path / "b.vtp")
    # Without VTK, legacy .vtk is written and read by meshio (as an unstructured grid).
    sphere.save(tmp_path / "grid.vtk")
    back = shapes.load(tmp_path / "grid.vtk")
    np.testing.assert_allclose(back.points, sphere.points)
    np.testing.assert_array_equal(back.faces, sphere.faces)
    np.testing.assert_allclose(back.point_data["displacement"], sphere.point_data["displacement"])
