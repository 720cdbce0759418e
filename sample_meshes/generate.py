"""Regenerate every file in sample_meshes/ from data that nilearn ships inside its wheel.

Usage (from the repository root, with the ``samples`` and ``vtk`` extras installed)::

    python sample_meshes/generate.py            # refuses to overwrite existing files
    python sample_meshes/generate.py --force    # rewrite them

Nothing is downloaded: nilearn >= 0.10 carries fsaverage5 and the MNI ICBM152 2009 tissue maps
in ``nilearn/datasets/data/``. See README.md beside this script for provenance and licences.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
from importlib import resources
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
COHORT_SEED = 0
COHORT_SIZE = 10
COHORT_POINTS = 2562  # fsaverage5 left pial decimated to the vertex count of an ico-4 sphere
# Subjects 3.1 mm on average from the true mean (mean point-to-surface distance after rigid ICP;
# 0.93 mm with make_cohort's defaults, whose warps mostly slide along the surface): a shared mode
# of peak 18-36 mm that stays the first principal mode, bumps and dents along the normals (peak
# 14 mm), and subjects x +- u(x), so the true mean is the exact mean of each pair (README.md).
COHORT_MODE_AMPLITUDE = 36.0
COHORT_NORMAL_AMPLITUDE = 14.0
COHORT_PAIRS = "linear"


def _nilearn_data() -> Path:
    try:
        import nilearn
    except ImportError:
        sys.exit("generate.py needs nilearn: pip install 'shapeot[samples]'")
    print(f"nilearn {nilearn.__version__}")
    return Path(str(resources.files("nilearn") / "datasets" / "data"))


def _write(path: Path, payload: bytes, force: bool) -> None:
    path = path.resolve()  # the two brains are links into shapeot/data/ (shipped in the wheel)
    if path.exists() and not force:
        raise SystemExit(f"{path} exists; pass --force to regenerate")
    tmp = path.with_name("." + path.name + ".part")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def brain_surfaces(data: Path, force: bool) -> None:
    """fsaverage5 pial surfaces: the GIfTI files nilearn ships, decompressed, byte for byte."""
    for hemi, short in (("left", "lh"), ("right", "rh")):
        src = data / "fsaverage5" / f"pial_{hemi}.gii.gz"
        _write(HERE / f"fsaverage5_{short}_pial.gii", gzip.decompress(src.read_bytes()), force)


def tissue_labels(data: Path, force: bool) -> None:
    """A 2 mm label map (0 background, 1 grey matter, 2 white matter) from the MNI ICBM152 2009a
    symmetric tissue probability maps (1 mm, values 0-255 in nilearn's copy).

    Downsampling averages each 2x2x2 block of probabilities (an exact 2 mm grid whose voxel
    centres sit 0.5 mm inside the 1 mm grid's); a voxel is labelled with the tissue of larger
    probability when that probability is at least one half.
    """
    import nibabel as nib

    gm_img = nib.load(data / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz")
    wm_img = nib.load(data / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz")
    assert np.allclose(gm_img.affine, wm_img.affine)

    def block_mean(img):
        a = np.asarray(img.dataobj, dtype=np.float64) / 255.0
        a = a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2, : a.shape[2] // 2 * 2]
        s = a.shape
        return a.reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2).mean(axis=(1, 3, 5))

    gm, wm = block_mean(gm_img), block_mean(wm_img)
    labels = np.zeros(gm.shape, dtype=np.uint8)
    labels[(gm >= 0.5) & (gm >= wm)] = 1
    labels[(wm >= 0.5) & (wm > gm)] = 2
    affine = gm_img.affine.copy()
    affine[:3, 3] = affine[:3, :3] @ np.full(3, 0.5) + affine[:3, 3]  # centre of block (0, 0, 0)
    affine[:3, :3] = affine[:3, :3] * 2.0
    img = nib.Nifti1Image(labels, affine)
    img.header.set_xyzt_units("mm")
    img.set_sform(affine, code=4)  # MNI152 space
    img.set_qform(affine, code=4)
    target = HERE / "mni152_tissue_labels_2mm.nii.gz"
    if target.exists() and not force:
        raise SystemExit(f"{target} exists; pass --force to regenerate")
    tmp = HERE / ".mni152_tissue_labels_2mm.part.nii.gz"  # nibabel picks the format by suffix
    nib.save(img, tmp)
    os.replace(tmp, target)


def cohort(force: bool) -> None:
    """Ten subjects from the decimated left pial surface by known paired random displacements."""
    from shapeot.shapes import Shape, load
    from shapeot.shapes.synthetic import make_cohort

    full = load(HERE / "fsaverage5_lh_pial.gii")
    reference = full.decimate(COHORT_POINTS)
    reference = Shape(reference.points, reference.faces, name="fsaverage5_lh_pial_decimated")
    folder = HERE / "cohort"
    folder.mkdir(exist_ok=True)
    reference.save(HERE / "cohort_reference.gii", overwrite=force)
    result = make_cohort(reference, COHORT_SIZE, COHORT_SEED, mode_amplitude=COHORT_MODE_AMPLITUDE,
                         normal_amplitude=COHORT_NORMAL_AMPLITUDE, pairs=COHORT_PAIRS)
    manifest = {
        "reference": "../cohort_reference.gii",
        "generator": "shapeot.shapes.synthetic.make_cohort",
        "parameters": result.parameters,
        "subjects": [],
    }
    for subject, truth, warp, score in zip(result.subjects, result.truths, result.warps, result.mode_scores):
        subject.save(folder / f"{subject.name}.gii", overwrite=force)
        truth_path = folder / f"{subject.name}_truth.npy"
        if truth_path.exists() and not force:
            raise SystemExit(f"{truth_path} exists; pass --force to regenerate")
        np.save(truth_path, truth.astype(np.float32))
        manifest["subjects"].append({
            "surface": f"{subject.name}.gii",
            "truth": truth_path.name,
            "n_points": subject.n_points,
            "mode_score_mm": round(float(score), 4),
            "rigid_matrix": None if warp.rigid is None else np.round(warp.rigid.matrix(), 8).tolist(),
        })
    buffer = io.BytesIO()
    np.save(buffer, result.mode.astype(np.float32))
    _write(folder / "mode.npy", buffer.getvalue(), force)
    _write(folder / "cohort.json", (json.dumps(manifest, indent=1) + "\n").encode(), force)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))  # use this checkout's shapeot
    data = _nilearn_data()
    brain_surfaces(data, args.force)
    tissue_labels(data, args.force)
    cohort(args.force)
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"sample_meshes/: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
