"""Fixtures: FreeSurfer subject folders written at test time with nibabel's own writers, from the
sample fsaverage5 surface (decimated for speed), a known smooth warp, and fast registrations."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_meshes" / "fsaverage5_lh_pial.gii"
CRAS = np.array([1.5, -17.25, 19.0])
# the target subjects' scanners put the head elsewhere: tkr-RAS frames 30 mm apart
CRAS_TGT = np.array([-6.0, 12.5, 7.75])
CRAS_REM = np.array([10.0, -40.0, 3.0])


def thickness(points: np.ndarray) -> np.ndarray:
    """A smooth 'thickness' (mm) as a function of position: the truth is known anywhere."""
    p = np.asarray(points)
    return 2.5 + 0.6 * np.sin(p[:, 0] / 15.0) + 0.5 * np.cos(p[:, 1] / 20.0) + p[:, 2] / 60.0


def volume_info(cras=CRAS) -> dict:
    return {"head": np.array([2, 0, 20], dtype=np.int32), "valid": "1  # volume info valid",
            "filename": "../mri/filled-pretess255.mgz", "volume": np.array([256, 256, 256]),
            "voxelsize": np.array([1.0, 1.0, 1.0]), "xras": np.array([-1.0, 0.0, 0.0]),
            "yras": np.array([0.0, 0.0, -1.0]), "zras": np.array([0.0, 1.0, 0.0]), "cras": np.asarray(cras, float)}


class Parcels:
    """A parcellation: each point gets the nearest of a few seeds (a Voronoi partition in 3D)."""

    def __init__(self, seeds: np.ndarray):
        from scipy.spatial import cKDTree

        self.tree = cKDTree(seeds)
        self.names = [f"parcel{i:02d}" for i in range(len(seeds))]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return self.tree.query(np.asarray(points))[1].astype(np.int64)


MIRROR = np.array([-1.0, 1.0, 1.0])  # the rh of a subject: its lh mirrored in x


def write_subject(folder: Path, points_scanner: np.ndarray, faces: np.ndarray, *, overlays=True, parcels=None,
                  cras=CRAS, rh: bool = False):
    """SUBJECT/surf/lh.pial (tkr-RAS + volume_info with c_ras), lh.thickness, label/lh.aparc.annot;
    with ``rh``, rh.pial (and rh.thickness): the lh mirrored in x (faces flipped, outward normals)."""
    from nibabel.freesurfer import write_annot, write_geometry, write_morph_data

    (folder / "surf").mkdir(parents=True)
    (folder / "label").mkdir()
    cras = np.asarray(cras, float)
    sides = [("lh", points_scanner, faces)] + ([("rh", points_scanner * MIRROR, faces[:, ::-1])] if rh else [])
    for hemi, pts, tris in sides:
        write_geometry(str(folder / "surf" / f"{hemi}.pial"), pts - cras, tris.astype(np.int32),
                       volume_info=volume_info(cras))
        if overlays:
            write_morph_data(str(folder / "surf" / f"{hemi}.thickness"), thickness(pts).astype(np.float32))
    if overlays:
        labels = parcels(points_scanner)
        rng = np.random.default_rng(5)
        ctab = np.zeros((len(parcels.names), 5), dtype=np.int32)
        ctab[:, :3] = rng.integers(0, 256, (len(parcels.names), 3))
        write_annot(str(folder / "label" / "lh.aparc.annot"), labels.astype(np.int32), ctab, parcels.names,
                    fill_ctab=True)
    return folder


@pytest.fixture(scope="session")
def small_lh():
    import shapeot

    return shapeot.load(SAMPLE).decimate(2500)


@pytest.fixture(scope="session")
def fast_config():
    from shapeot.registration import Level, RegistrationConfig

    # A few seconds on a 2,500-vertex surface: one start (the known rotation is small), two levels,
    # the last at full resolution without fine-tuning, so the final OT plan is the correspondence.
    return RegistrationConfig.from_preset(
        "nonrigid", engine={"backend": "torch"}, compute_metrics=False, finetune=None,
        prealign={"starts": 1, "points": 200, "refine_points": 400, "iterations": 4, "blurs": (0.12,)},
        levels=(Level(800, 0.08, 0.4, 1), Level(None, 0.03, 0.15, 2)))


@pytest.fixture(scope="session")
def subjects(tmp_path_factory, small_lh):
    """Three subject folders with different c_ras: 'src' (the decimated sample, both hemispheres)
    and 'tgt' (a known warp of it, vertices shuffled, both hemispheres); plus 'rem', the warped
    lh remeshed. Truth functions (scanner RAS) come along."""
    from shapeot.shapes import Shape
    from shapeot.shapes.synthetic import resample_surface, warp_pair

    root = tmp_path_factory.mktemp("subjects")
    pts, faces = np.asarray(small_lh.points), np.asarray(small_lh.faces)
    rng = np.random.default_rng(3)
    parcels = Parcels(pts[rng.choice(len(pts), 20, replace=False)])
    pair = warp_pair(small_lh, 0, amplitude=6.0, angle_deg=10.0, translation_mm=5.0, resample=False)
    perm = rng.permutation(len(pts))
    inv = np.argsort(perm)
    tgt_pts, tgt_faces = pair.truth[perm], inv[faces]
    rem = resample_surface(Shape(pair.truth, faces), 2)
    write_subject(root / "src", pts, faces, parcels=parcels, rh=True)
    write_subject(root / "tgt", tgt_pts, tgt_faces, overlays=False, cras=CRAS_TGT, rh=True)
    write_subject(root / "rem", np.asarray(rem.points), np.asarray(rem.faces), overlays=False, cras=CRAS_REM)
    flow_inv, rigid_inv = pair.warp.flow.inverse(), pair.warp.rigid.inverse()

    def back(points):  # target position -> source position (the known warp, inverted)
        return flow_inv.apply(rigid_inv.apply(np.asarray(points)))

    return {"root": root, "perm": perm, "parcels": parcels, "back": back, "warp": pair.warp}


@pytest.fixture(scope="session")
def registrations(subjects, fast_config):
    """src registered onto tgt (shuffled) and onto rem (remeshed)."""
    from shapeot.registration import register
    from shapeot.shapes.freesurfer import load_subject

    src = load_subject(subjects["root"] / "src")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key in ("tgt", "rem"):
            out[key] = register(src, load_subject(subjects["root"] / key), fast_config)
    return out
