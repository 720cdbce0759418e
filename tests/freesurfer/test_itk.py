"""ITK / ANTs exports read back by SimpleITK (an independent implementation of both conventions),
checked at the vertices, far from the surface, and by resampling a label volume."""
from __future__ import annotations

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")
FLIP = np.array([-1.0, -1.0, 1.0])  # RAS <-> LPS


def _rigid(deg: float, t) -> np.ndarray:
    m = np.eye(4)
    a = np.deg2rad(deg)
    m[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    m[:3, 3] = t
    return m


def _known_map(points: np.ndarray, width: float, amplitude: float = 6.0, seed: int = 4):
    """phi = rigid o spline, a composition as the pipeline builds it: a kernel spline of a known
    smooth flow (about 150 centres), then a rigid motion. The spline fades to 0 beyond ~4 widths."""
    from shapeot.deform import Composition, LinearMap, smooth_displacement
    from shapeot.shapes.synthetic import random_diffeomorphism

    flow = random_diffeomorphism(points, amplitude=amplitude, seed=seed)
    c = points[:: max(1, len(points) // 150)]
    spline = smooth_displacement(c, flow.apply(c), np.ones(len(c)), width)
    return Composition((spline, LinearMap(_rigid(8.0, [4.0, -3.0, 2.0]))))


def _move(tx, ras: np.ndarray) -> np.ndarray:
    return np.array([tx.TransformPoint(tuple(map(float, p))) for p in np.asarray(ras) * FLIP]) * FLIP


def _far_points(points: np.ndarray, lo: float, hi: float, n: int = 200) -> np.ndarray:
    """Random points whose distance to the nearest vertex is in [lo, hi] mm."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(0)
    d = rng.normal(size=(20 * n, 3))
    cand = points.mean(0) + d / np.linalg.norm(d, axis=1)[:, None] * rng.uniform(20, 160, (20 * n, 1))
    dist = cKDTree(points).query(cand)[0]
    far = cand[(dist >= lo) & (dist <= hi)][:n]
    assert len(far) == n
    return far


@pytest.fixture(scope="module")
def exported(tmp_path_factory, small_lh):
    """One export of a known map of the 2,500-vertex hemisphere: both composites and ANTs' pair."""
    from shapeot.deform import export_itk

    out = tmp_path_factory.mktemp("itk")
    pts = np.asarray(small_lh.points)
    phi = _known_map(pts, width=7.0)
    info = export_itk(phi, pts, forward=out / "fwd.h5", inverse=out / "inv.h5", ants_prefix=out / "src_to_tgt_",
                      tolerance_mm=0.08)
    return phi, pts, info, out


def test_composite_transforms_at_the_vertices(exported):
    phi, pts, info, out = exported
    fwd, inv = sitk.ReadTransform(str(out / "fwd.h5")), sitk.ReadTransform(str(out / "inv.h5"))
    err_f = np.linalg.norm(_move(fwd, pts) - phi.apply(pts), axis=1)
    err_i = np.linalg.norm(_move(inv, phi.apply(pts)) - pts, axis=1)
    print(f"ITK .h5 at the vertices: forward {err_f.max():.4f} mm, inverse {err_i.max():.4f} mm; grid {info.grid.size}"
          f" at {info.spacing_mm:.2f} mm, border {info.border_mm:.2e} mm")
    assert err_f.max() <= 0.1 and err_i.max() <= 0.1
    assert abs(max(err_f.max(), err_i.max()) - info.max_error_mm) < 1e-3  # what we report is what ITK computes
    assert info.border_mm <= 0.01  # the fields end without a cliff


def test_far_from_the_surface_the_transform_is_the_affine_part(exported):
    from shapeot.deform import LinearMap

    phi, pts, info, out = exported
    fwd, inv = sitk.ReadTransform(str(out / "fwd.h5")), sitk.ReadTransform(str(out / "inv.h5"))
    affine = LinearMap(info.affine)
    np.testing.assert_allclose(info.affine, _rigid(8.0, [4.0, -3.0, 2.0]), atol=1e-12)
    far = _far_points(pts, 30.0, 80.0)
    moved = _move(fwd, far)
    # the map itself is its affine part there (the spline has faded), and ITK reproduces both
    assert np.linalg.norm(phi.apply(far) - affine.apply(far), axis=1).max() <= 0.1
    assert np.linalg.norm(moved - phi.apply(far), axis=1).max() <= 0.1
    assert np.linalg.norm(moved - affine.apply(far), axis=1).max() <= 0.1
    back = _move(inv, affine.apply(far))
    assert np.linalg.norm(back - far, axis=1).max() <= 0.1
    # beyond the grid too (ITK's field is 0 outside it): 300-400 mm away, still the affine
    farther = pts.mean(0) + np.array([[350.0, 0.0, 0.0], [0.0, -380.0, 20.0]])
    np.testing.assert_allclose(_move(fwd, farther), affine.apply(farther), atol=1e-6)


def test_ants_file_pair_follows_ants_conventions(exported):
    """ANTs (fixed = target, moving = source): point lists are applied last first, the forward
    pair [1Warp, 0GenericAffine] maps target points to source points; the inverse pair
    [[0GenericAffine, inverted], 1InverseWarp] maps source points onto the target."""
    phi, pts, info, out = exported
    affine = sitk.ReadTransform(str(out / "src_to_tgt_0GenericAffine.mat"))
    warp = sitk.ReadImage(str(out / "src_to_tgt_1Warp.nii.gz"))
    inverse_warp = sitk.ReadImage(str(out / "src_to_tgt_1InverseWarp.nii.gz"))
    assert warp.GetPixelID() == sitk.sitkVectorFloat64 and warp.GetNumberOfComponentsPerPixel() == 3
    to_source = sitk.CompositeTransform([affine, sitk.DisplacementFieldTransform(warp)])  # no cast needed
    to_target = sitk.CompositeTransform([sitk.DisplacementFieldTransform(inverse_warp), affine.GetInverse()])
    assert np.linalg.norm(_move(to_source, phi.apply(pts)) - pts, axis=1).max() <= 0.1
    assert np.linalg.norm(_move(to_target, pts) - phi.apply(pts), axis=1).max() <= 0.1


def test_a_resampled_label_volume_lies_on_the_warped_mesh(tmp_path):
    """A source label volume resampled onto a target grid with the inverse composite (what
    ``sitk.Resample`` and ``antsApplyTransforms`` do): its surface, by marching cubes, lies on the
    source mesh moved by the registration's map. The forward file in its place misses by far."""
    import pyvista as pv
    from skimage.measure import marching_cubes

    from shapeot.deform import export_itk

    spacing, origin = 1.0, np.array([-60.0, -55.0, -45.0])  # LPS

    def image(array: np.ndarray, org: np.ndarray):
        img = sitk.GetImageFromArray(array.astype(np.float32))
        img.SetOrigin(tuple(map(float, org)))
        img.SetSpacing((spacing,) * 3)
        return img

    def surface(array: np.ndarray, org: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        verts, faces, _, _ = marching_cubes(array, 0.5, spacing=(spacing,) * 3)
        return (org + verts[:, ::-1]) * FLIP, faces  # (z, y, x) -> x, y, z; LPS -> RAS

    k, j, i = np.meshgrid(*(np.arange(n) for n in (90, 110, 120)), indexing="ij")
    ras = (origin + np.stack([i, j, k], -1) * spacing) * FLIP
    centre, radii = np.array([-5.0, 8.0, 0.0]), np.array([42.0, 33.0, 27.0])
    labels = (((ras - centre) / radii) ** 2).sum(-1) <= 1.0  # (z, y, x) label volume of an ellipsoid
    verts, faces = surface(labels.astype(np.float32), origin)
    phi = _known_map(verts, width=9.0, amplitude=5.0, seed=7)
    warped = pv.PolyData(phi.apply(verts), np.hstack([np.full((len(faces), 1), 3), faces]).ravel())
    export_itk(phi, verts, inverse=tmp_path / "inv.h5", forward=tmp_path / "fwd.h5", tolerance_mm=0.1)

    lo = (warped.points.min(0) - 8.0) * FLIP  # the target grid: around the warped shape, LPS
    hi = (warped.points.max(0) + 8.0) * FLIP
    t_origin = np.minimum(lo, hi)
    t_size = tuple(int(v) for v in np.ceil(np.abs(hi - lo) / spacing) + 1)
    reference = image(np.zeros(t_size[::-1]), t_origin)

    def mean_distance(transform_file: str) -> float:
        tx = sitk.ReadTransform(str(tmp_path / transform_file))
        moved = sitk.Resample(image(labels, origin), reference, tx, sitk.sitkLinear, 0.0)
        pts, _ = surface(sitk.GetArrayFromImage(moved), t_origin)
        d = pv.PolyData(pts).compute_implicit_distance(warped)["implicit_distance"]
        return float(np.abs(d).mean())

    good, wrong = mean_distance("inv.h5"), mean_distance("fwd.h5")
    print(f"label volume resampled with the inverse: {good:.3f} mm from the warped mesh (forward: {wrong:.2f} mm)")
    assert good <= 0.5 * spacing
    assert wrong > 2 * spacing


def test_refuses_what_it_cannot_do(tmp_path, small_lh):
    from shapeot.deform import LinearMap, export_itk

    pts = np.asarray(small_lh.points)
    phi = _known_map(pts, width=7.0)
    with pytest.raises(ValueError, match="max_voxels"):
        export_itk(phi, pts, forward=tmp_path / "w.h5", tolerance_mm=1e-4, max_voxels=100_000)
    with pytest.raises(ValueError, match="ants_prefix"):  # a NIfTI field cannot hold the affine part
        export_itk(phi, pts, forward=tmp_path / "w.nii.gz")
    with pytest.raises(ValueError, match="nothing to write"):
        export_itk(phi, pts)
    (tmp_path / "taken.h5").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_itk(LinearMap(_rigid(3.0, [1, 2, 3])), pts, forward=tmp_path / "taken.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.h5"]
    assert (tmp_path / "taken.h5").read_text() == "mine"


@pytest.mark.parametrize("nested", [False, True])
def test_a_linear_map_exports_without_a_field(tmp_path, small_lh, nested):
    """A rigid or affine registration (one linear map, or a composition of them) has no field."""
    from shapeot.deform import Composition, LinearMap, export_itk

    pts = np.asarray(small_lh.points)
    m = LinearMap(_rigid(20.0, [10.0, 0.0, -5.0]))
    given = Composition((LinearMap(_rigid(5.0, [1.0, 2.0, 3.0])), LinearMap(_rigid(-5.0, [0, 0, 0])))) if nested else m
    if nested:
        m = given.maps[1].compose(given.maps[0])
        np.testing.assert_allclose(m.apply(pts), given.apply(pts), atol=1e-9)
    info = export_itk(given, pts, forward=tmp_path / "f.h5", ants_prefix=tmp_path / "a_")
    assert info.grid is None
    np.testing.assert_allclose(_move(sitk.ReadTransform(str(tmp_path / "f.h5")), pts), m.apply(pts), atol=1e-9)
    affine = sitk.ReadTransform(str(tmp_path / "a_0GenericAffine.mat"))
    np.testing.assert_allclose(_move(affine, m.apply(pts)), pts, atol=1e-9)
