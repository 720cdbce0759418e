"""Fixtures for tests/shapes: small real meshes and label maps of known geometry."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meshes"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def sphere():
    """An icosphere of radius 10 mm (642 vertices), with a vector and a scalar point array."""
    import trimesh

    from shapeot.shapes import Shape

    ico = trimesh.creation.icosphere(subdivisions=3, radius=10.0)
    rng = np.random.default_rng(1)
    n = len(ico.vertices)
    return Shape(
        ico.vertices,
        ico.faces,
        name="sphere",
        point_data={"displacement": rng.normal(size=(n, 3)), "thickness": rng.uniform(1, 4, size=n)},
    )


class Ball:
    """A ball of known centre and radius voxelised on an oblique, anisotropic grid."""

    label = 3
    radius = 12.0
    spacing = np.array([0.7, 1.1, 2.0])
    shape = (60, 50, 36)

    def __init__(self) -> None:
        from scipy.spatial.transform import Rotation

        rotation = Rotation.from_euler("xyz", [20.0, -35.0, 50.0], degrees=True).as_matrix()
        self.affine = np.eye(4)  # voxel (i, j, k) -> RAS mm
        self.affine[:3, :3] = rotation * self.spacing  # columns: axis directions times spacing
        self.affine[:3, 3] = [-40.0, 25.0, 13.0]
        # A centre off the voxel grid, well inside the image.
        self.centre = self.affine[:3, :3] @ [29.3, 24.6, 17.2] + self.affine[:3, 3]
        ijk = np.stack(np.meshgrid(*[np.arange(n) for n in self.shape], indexing="ij"), -1).reshape(-1, 3)
        ras = ijk @ self.affine[:3, :3].T + self.affine[:3, 3]
        inside = np.linalg.norm(ras - self.centre, axis=1) <= self.radius
        self.labels = np.where(inside, self.label, 0).reshape(self.shape).astype(np.uint8)
        # A second, small label in a corner, so that "which label?" has more than one answer.
        self.labels[2:5, 2:5, 2:4] = 7

    @property
    def half_voxel(self) -> float:
        return 0.5 * float(self.spacing.min())

    def write_nifti(self, path: Path) -> Path:
        import nibabel as nib

        nib.save(nib.Nifti1Image(self.labels, self.affine), path)
        return path

    def lps_geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """(direction matrix with spacing, origin) in LPS, as ITK and NRRD store them."""
        flip = np.diag([-1.0, -1.0, 1.0])
        return flip @ self.affine[:3, :3], flip @ self.affine[:3, 3]

    def write_nrrd(self, path: Path, extra: dict | None = None) -> Path:
        import nrrd

        directions, origin = self.lps_geometry()
        header = {
            "space": "left-posterior-superior",
            "space directions": directions.T,  # one row per image axis
            "space origin": origin,
            "kinds": ["domain"] * 3,
            **(extra or {}),
        }
        nrrd.write(str(path), self.labels, header)
        return path


@pytest.fixture(scope="session")
def ball() -> Ball:
    return Ball()
