"""Readers check what they read against what the file promised; bad arguments are refused.

Each case: the exact exception type, a fragment of the message (which always names the file
for a file problem), and no file written beside the input.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import shapeot.shapes as shapes
from shapeot.shapes import ShapeFileError

from .conftest import icosphere


def refuses(path, fragment, **kwargs):
    """Assert load(path) raises ShapeFileError naming the file and saying ``fragment``; nothing written."""
    before = sorted(os.listdir(os.path.dirname(path)))
    with pytest.raises(ShapeFileError) as info:
        shapes.load(path, **kwargs)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert fragment in message, message
    assert sorted(os.listdir(os.path.dirname(path))) == before
    return message


def _vtk_ascii(shape, path):
    """A legacy .vtk file written by VTK's own ASCII writer (as other tools write them)."""
    from vtkmodules.vtkIOLegacy import vtkPolyDataWriter

    from shapeot.shapes.vtkio import arrays_to_polydata

    writer = vtkPolyDataWriter()
    writer.SetFileName(str(path))
    writer.SetInputData(arrays_to_polydata(np.asarray(shape.points), shape.faces))
    writer.SetFileTypeToASCII()
    assert writer.Write() == 1
    return path


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_ascii_vtk_with_a_non_finite_vertex(ico, tmp_path, bad):
    pytest.importorskip("vtkmodules")
    path = _vtk_ascii(ico, tmp_path / f"{bad}.vtk")
    head, body = path.read_text().split("double\n", 1)
    tokens = body.split(" ")
    tokens[9] = bad  # vertex 3, x
    path.write_text(head + "double\n" + " ".join(tokens))
    refuses(path, "VTK could not read it as .vtk (corrupt, truncated, or a NaN/inf value in an ASCII file)")


def test_vtk_ascii_nan_from_vtk_writer(ico, tmp_path):
    """VTK writes NaN as 'nan': reading it back used to give uninitialised memory from there on."""
    pytest.importorskip("vtkmodules")
    pts = np.array(ico.points)
    pts[3, 0] = np.nan
    from vtkmodules.vtkIOLegacy import vtkPolyDataWriter

    from shapeot.shapes.vtkio import arrays_to_polydata

    path = tmp_path / "nan_by_vtk.vtk"
    w = vtkPolyDataWriter()
    w.SetFileName(str(path))
    w.SetInputData(arrays_to_polydata(pts, ico.faces))
    w.SetFileTypeToASCII()
    w.Write()
    assert "nan" in path.read_text()
    refuses(path, "Unrecognized keyword: nan")


def test_truncated_binary_vtk(ico, tmp_path):
    pytest.importorskip("vtkmodules")
    full = tmp_path / "full.vtk"
    ico.save(full)
    cut = tmp_path / "cut.vtk"
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])  # the points survive, the polygons are cut
    refuses(cut, "Error reading")
    # and a clean file still loads, faces and all
    assert shapes.load(full).faces.shape == ico.faces.shape


def test_truncated_obj(ico, tmp_path):
    full = tmp_path / "full.obj"
    ico.save(full)
    text = full.read_text()
    mid_line = tmp_path / "mid_line.obj"  # cut inside a face line
    mid_line.write_text(text[: text.rindex("\nf ") + 4])
    refuses(mid_line, "ends in the middle of a line: the file is truncated")
    mid_vertex = tmp_path / "mid_vertex.obj"  # cut inside a vertex line: fewer than 3 coordinates
    cut = text.index("\nv ", 200) + 5
    mid_vertex.write_text(text[:cut])
    refuses(mid_vertex, "points must be 3D; the OBJ vertex line")
    before_faces = tmp_path / "normals_no_faces.obj"  # a cut at a line end, before the faces
    lines = [ln for ln in text.splitlines() if ln.startswith("v ")]
    before_faces.write_text("\n".join(lines + ["vn 0 0 1" for _ in lines]) + "\n")
    refuses(before_faces, "has vertex normals or texture coordinates but no faces")


@pytest.mark.parametrize("ext,fragment", [
    ("ply", "is not a valid PLY file (it does not start with 'ply')"),
    ("stl", "is not a valid STL file: as a binary STL its header promises"),
    ("obj", "is not a valid OBJ file (binary data where text was expected)"),
    ("off", "is not a valid OFF file (binary data where text was expected)"),
])
def test_random_bytes(tmp_path, ext, fragment):
    path = tmp_path / f"random.{ext}"
    path.write_bytes(b"\x00\x82" + np.random.default_rng(0).bytes(3000))
    refuses(path, fragment)


def test_two_dimensional_files(tmp_path):
    ply = tmp_path / "flat.ply"
    ply.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                   "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0\n1 0\n0 1\n3 0 1 2\n")
    refuses(ply, "points must be 3D; the PLY vertices have no z property (properties: x, y)")
    off = tmp_path / "flat.off"
    off.write_text("OFF\n3 1 0\n0 0\n1 0\n0 1\n3 0 1 2\n")
    refuses(off, "is truncated or corrupt: its OFF data cannot be read")
    obj = tmp_path / "flat.obj"
    obj.write_text("v 0 0\nv 1 0\nv 0 1\nf 1 2 3\n")
    refuses(obj, "points must be 3D; the OBJ vertex line 'v 0 0' has 2 coordinates")


def test_header_counts_are_checked(tmp_path):
    ply = tmp_path / "short.ply"  # promises 4 vertices, holds 3
    ply.write_text("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
                   "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    refuses(ply, "PLY")
    off = tmp_path / "short.off"  # promises 2 faces, holds 1
    off.write_text("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    refuses(off, "OFF")


def test_truncated_binary_ply_and_stl(ico, tmp_path):
    for ext, fragment in (("ply", "is truncated or corrupt: its PLY data cannot be read"),
                          ("stl", "as a binary STL its header promises 80 triangles (4084 bytes)")):
        full = tmp_path / f"full.{ext}"
        ico.save(full)
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
        refuses(cut, fragment)
    ascii_stl = tmp_path / "open.stl"
    ascii_stl.write_text("solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\nendloop\n")
    refuses(ascii_stl, "is an ASCII STL file without its 'endsolid' line: the file is truncated")


def _scan(tmp_path, name="scan.nii.gz", affine=None, units=None):
    import nibabel as nib

    vol = np.zeros((14, 14, 14), np.uint8)
    vol[3:10, 3:10, 3:10] = 3
    vol[11:13, 11:13, 11:13] = 7
    img = nib.Nifti1Image(vol, np.eye(4) if affine is None else affine)
    if units:
        img.header.set_xyzt_units(units)
    nib.save(img, tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("label", [1.9, 3.5, float("nan"), True, [3]])
def test_label_that_is_not_a_whole_number(tmp_path, label):
    path = _scan(tmp_path)
    with pytest.raises(ValueError, match=r"label must be a whole number or a segment name; got"):
        shapes.load(path, label=label)
    assert shapes.load(path, label=3.0).source.label == 3  # 3.0 is label 3


@pytest.mark.parametrize("options,fragment", [
    ({"smooth": -1.0}, "smooth must be a finite number of mm >= 0; got -1.0"),
    ({"smooth": float("nan")}, "smooth must be a finite number of mm >= 0; got nan"),
    ({"smooth": float("inf")}, "smooth must be a finite number of mm >= 0; got inf"),
    ({"n_points": 0}, "n_points must be a whole number >= 1 (or None); got 0"),
    ({"n_points": 10.5}, "n_points must be a whole number >= 1 (or None); got 10.5"),
    ({"method": "cubes"}, "method must be 'marching_cubes' or 'surface_nets'; got 'cubes'"),
    ({"units": "furlong"}, "unknown units 'furlong'; shapeot knows um, mm, cm, m"),
])
def test_bad_load_options(tmp_path, options, fragment):
    path = _scan(tmp_path)
    with pytest.raises(ValueError) as info:
        shapes.load(path, label=3, **options)
    assert fragment in str(info.value)


def test_multi_label_message_names_the_command_line_option(tmp_path):
    path = _scan(tmp_path)
    with pytest.raises(shapes.LabelNotFoundError) as info:
        shapes.load(path)
    assert "holds several labels; choose one (--label N on the command line, label=N in Python): 3 " in str(info.value)


def test_singular_or_non_finite_scan_geometry(tmp_path):
    import nrrd

    vol = np.zeros((8, 8, 8), np.uint8)
    vol[2:6, 2:6, 2:6] = 1
    flat = tmp_path / "flat.nrrd"  # a zero spacing along k
    nrrd.write(str(flat), vol, {"space": "left-posterior-superior", "space directions": np.diag([1.0, 1.0, 0.0]),
                                "space origin": np.zeros(3)})
    refuses(flat, "voxel-to-world matrix is singular (a zero spacing or parallel axes)")
    path = tmp_path / "nan.nrrd"
    nrrd.write(str(path), vol, {"space": "left-posterior-superior", "space directions": np.eye(3),
                                "space origin": np.array([np.nan, 0.0, 0.0])})
    refuses(path, "voxel-to-world matrix (spacing, directions, origin) holds NaN or infinite values")


# ------------------------------------------------------------------------------------------ units
def test_units_from_the_file_and_inferred(tmp_path):
    from shapeot.shapes import UnitsWarning

    metre_scan = _scan(tmp_path, "metres.nii.gz", np.diag([0.001, 0.001, 0.001, 1.0]), units="meter")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file says: no warning
        assert shapes.load(metre_scan, label=3).units == "m"
    brain_in_metres = icosphere(radius=0.08)  # a "brain" 0.16 m wide (bounding-box diagonal 0.277)
    ply = tmp_path / "metres.ply"
    brain_in_metres.replace(units="m").save(ply)
    with pytest.warns(UnitsWarning, match=r"metres.ply: the file does not state its units and the shape is only "
                                          r"0\.277 across, so it is taken to be in metres"):
        assert shapes.load(ply).units == "m"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert shapes.load(ply, units="m").units == "m"  # said explicitly: no warning
        mm = icosphere()
        mm.save(tmp_path / "mm.ply")
        assert shapes.load(tmp_path / "mm.ply").units == "mm"  # plausible millimetres: no warning
    vtp = tmp_path / "metres.vtp"  # shapeot writes the units into .vtk/.vtp and reads them back
    brain_in_metres.replace(units="m").save(vtp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = shapes.load(vtp)
    assert back.units == "m"
    np.testing.assert_array_equal(back.points, brain_in_metres.points)
    with pytest.warns(UnitsWarning, match="the file says its coordinates are in m, but units='mm' was given"):
        assert shapes.load(vtp, units="mm").units == "mm"


def test_units_are_validated_and_converted(ico):
    with pytest.raises(shapes.ShapeError, match="unknown units 'inch'"):
        ico.replace(units="inch")
    metres = ico.to_units("m")
    assert metres.units == "m"
    np.testing.assert_allclose(metres.points, ico.points / 1000)
    np.testing.assert_allclose(metres.to_units("mm").points, ico.points)
    d = ico.replace(point_data={"displacement": np.ones((ico.n_points, 3)), "label": np.arange(ico.n_points)})
    cm = d.to_units("cm")
    np.testing.assert_allclose(cm.point_data["displacement"], 0.1)
    np.testing.assert_array_equal(cm.point_data["label"], np.arange(ico.n_points))


def test_gifti_is_millimetres_only(ico, tmp_path):
    path = tmp_path / "metres.gii"
    with pytest.raises(ShapeFileError, match=r"GIfTI coordinates are millimetres by definition and this shape is in m"):
        ico.to_units("m").save(path)
    assert not path.exists() and os.listdir(tmp_path) == []
