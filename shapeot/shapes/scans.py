"""Label maps (segmented scans) and the surface of one label, in world RAS millimetres.

Coordinate convention
---------------------
shapeot works in **RAS** millimetres (x to the patient's Right, y Anterior, z Superior), the
frame of NIfTI, FreeSurfer (scanner RAS) and 3D Slicer's scene. Formats that store LPS (NRRD
with ``space: left-posterior-superior``, and MetaImage, which follows ITK) are converted by
negating x and y: ``(x, y, z)_RAS = (-x, -y, z)_LPS``. The voxel-to-world affine (spacing,
direction cosines, origin) of the file is applied in full, so oblique and anisotropic scans
give surfaces in the same place as the scan and as a model that 3D Slicer exports from it.

Surface extraction
------------------
scikit-image's marching cubes (always available) on the binary mask of one label, cropped to
the label's bounding box and padded so the surface is closed; or VTK's ``vtkSurfaceNets3D``
(``method="surface_nets"``, needs VTK). Extraction runs in voxel index space and the affine is
applied to the vertices afterwards; faces are then oriented so that normals point outwards
(positive enclosed volume), whatever the handedness of the affine.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from .errors import LabelNotFoundError, ShapeFileError
from .geometry import signed_volume

__all__ = ["Label", "LabelVolume", "read_label_volume", "label_table", "extract_surface", "SCAN_FORMATS"]

SCAN_FORMATS = ("nifti", "mgh", "nrrd", "metaimage")

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Label:
    """One label present in a label map.

    Attributes
    ----------
    value : int
        The voxel value.
    voxels : int
        Number of voxels with this value.
    volume_mm3 : float
        ``voxels`` times the voxel volume (mm^3).
    name : str or None
        The name stored in the file (e.g. a ``.seg.nrrd`` segment name), if any.
    layer : int
        For multi-layer ``.seg.nrrd`` files, the layer holding the label (0 otherwise).
    """

    value: int
    voxels: int
    volume_mm3: float
    name: str | None = None
    layer: int = 0

    def __str__(self) -> str:
        named = f" {self.name!r}" if self.name else ""
        return f"{self.value}{named} ({self.voxels} voxels)"


class LabelVolume(NamedTuple):
    """A label map read from a file.

    layers : (L, I, J, K) int array
        Label values; L = 1 except for multi-layer ``.seg.nrrd`` files.
    affine : (4, 4) float array
        Voxel indices (i, j, k, 1) -> RAS millimetres.
    names : dict of (layer, value) -> str
        Segment names, where the file stores them.
    units : str or None
        Length unit of the affine where the file states it (NIfTI ``xyzt_units``, NRRD
        ``space units``; MGH and MetaImage are mm); None when it does not.
    """

    layers: np.ndarray
    affine: np.ndarray
    names: dict[tuple[int, int], str]
    units: str | None = None


def _as_labels(path: str, data: np.ndarray) -> np.ndarray:
    """Integer labels; a float image is accepted only if every value is a whole number."""
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer) or data.dtype == bool:
        return data.astype(np.int64, copy=False)
    if not np.issubdtype(data.dtype, np.floating):
        raise ShapeFileError(path, f"voxel type {data.dtype} is not a label map")
    if not np.isfinite(data).all() or not np.all(data == np.round(data)):
        raise ShapeFileError(path, "voxel values are not whole numbers: this is an image, not a label map")
    return data.astype(np.int64)


def _read_nibabel(path: str) -> LabelVolume:
    import nibabel as nib

    img = nib.load(path)
    data = np.asanyarray(img.dataobj)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ShapeFileError(path, f"image has shape {data.shape}; a 3D label map is needed")
    # NIfTI's sform/qform (and MGH's vox2ras) already map voxels to RAS (mm unless xyzt_units says).
    units = "mm"
    if hasattr(img.header, "get_xyzt_units"):
        units = {"meter": "m", "mm": "mm", "micron": "um"}.get(img.header.get_xyzt_units()[0])
    return LabelVolume(_as_labels(path, data)[None], np.asarray(img.affine, dtype=np.float64), {}, units)


_SPACES = {
    "right-anterior-superior": np.eye(4), "ras": np.eye(4),
    "left-posterior-superior": _LPS_TO_RAS, "lps": _LPS_TO_RAS,
    "left-anterior-superior": np.diag([-1.0, 1.0, 1.0, 1.0]), "las": np.diag([-1.0, 1.0, 1.0, 1.0]),
}


def _read_nrrd(path: str) -> LabelVolume:
    import nrrd

    data, header = nrrd.read(path)  # data[i, j, k] with i fastest in the file
    space = str(header.get("space", "left-posterior-superior")).lower()
    if space not in _SPACES:
        raise ShapeFileError(path, f"NRRD space {space!r} is not supported (use RAS or LPS)")
    ndim = data.ndim
    dirs = header.get("space directions")
    if dirs is None:
        spacings = np.asarray(header.get("spacings", [1.0] * ndim), dtype=float)
        dirs = np.array([np.eye(3)[i] * s for i, s in enumerate(spacings[-3:])])
        dirs = np.vstack([np.full((ndim - 3, 3), np.nan), dirs])
    dirs = np.asarray(dirs, dtype=float)
    spatial = np.flatnonzero(np.all(np.isfinite(dirs), axis=1))
    if len(spatial) != 3:
        raise ShapeFileError(path, f"NRRD has {len(spatial)} spatial axes; a 3D label map is needed")
    other = [a for a in range(ndim) if a not in spatial]
    if len(other) > 1 or (other and other[0] != 0):
        raise ShapeFileError(path, "only a leading non-spatial (layer) axis is supported in NRRD")
    layers = data if other else data[None]
    affine = np.eye(4)
    affine[:3, :3] = dirs[spatial].T  # row a of 'space directions' is the step along axis a
    affine[:3, 3] = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    names = _segment_names(header, n_layers=layers.shape[0])
    units = None
    stated = header.get("space units")
    if stated is not None:
        stated = {str(u).strip().strip('"') for u in np.atleast_1d(stated)}
        if len(stated) != 1:
            raise ShapeFileError(path, f"NRRD space units differ between axes ({', '.join(sorted(stated))})")
        units = stated.pop()
    return LabelVolume(_as_labels(path, layers), _SPACES[space] @ affine, names, units)


def _segment_names(header: dict, n_layers: int) -> dict[tuple[int, int], str]:
    """Slicer .seg.nrrd keys: SegmentK_Name, SegmentK_LabelValue, SegmentK_Layer."""
    names = {}
    for key in header:
        m = re.fullmatch(r"Segment(\d+)_Name", str(key))
        if not m:
            continue
        k = m.group(1)
        layer = int(header.get(f"Segment{k}_Layer", int(k) if n_layers > 1 else 0))
        value = int(header.get(f"Segment{k}_LabelValue", 1 if n_layers > 1 else int(k) + 1))
        names[(layer, value)] = str(header[key])
    return names


def _read_metaimage(path: str) -> LabelVolume:
    from .metaimage import read_metaimage

    data, affine_lps = read_metaimage(path)
    return LabelVolume(_as_labels(path, data)[None], _LPS_TO_RAS @ affine_lps, {}, "mm")  # ITK: mm


def read_label_volume(path: str | os.PathLike, fmt: str) -> LabelVolume:
    """Read a label map of format ``fmt`` (one of :data:`SCAN_FORMATS`).

    Raises
    ------
    ShapeFileError
        If the file cannot be read or is not a 3D label map.
    """
    path = os.fspath(path)
    readers = {"nifti": _read_nibabel, "mgh": _read_nibabel, "nrrd": _read_nrrd, "metaimage": _read_metaimage}
    try:
        volume = readers[fmt](path)
    except ShapeFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader's failure means a corrupt file to the user
        raise ShapeFileError(path, f"cannot be read as {fmt}: {type(exc).__name__}: {exc}") from exc
    affine = np.asarray(volume.affine, dtype=np.float64)
    if not np.isfinite(affine).all():
        raise ShapeFileError(path, "the voxel-to-world matrix (spacing, directions, origin) holds NaN or infinite "
                                   "values")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12 * max(float(np.abs(affine[:3, :3]).max()), 1e-300) ** 3:
        raise ShapeFileError(path, "the voxel-to-world matrix is singular (a zero spacing or parallel axes)")
    return volume


def label_table(volume: LabelVolume) -> list[Label]:
    """The non-zero labels of a volume with their voxel counts, volumes and names."""
    voxel_mm3 = abs(float(np.linalg.det(volume.affine[:3, :3])))
    out = []
    for layer, data in enumerate(volume.layers):
        values, counts = np.unique(data, return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist()):
            if v != 0:
                out.append(Label(int(v), int(c), c * voxel_mm3, volume.names.get((layer, int(v))), layer))
    return out


def _find(path: str, volume: LabelVolume, label: int | str | None) -> Label:
    table = label_table(volume)
    listing = ", ".join(str(lab) for lab in table) or "none (the scan is empty)"
    if label is None:
        if len(table) == 1:
            return table[0]
        raise LabelNotFoundError(path, "holds several labels; choose one (--label N on the command line, label=N in "
                                       f"Python): {listing}", table)
    if isinstance(label, str):
        hits = [lab for lab in table if lab.name == label]
        if not hits and label.strip().lstrip("-").isdigit():
            label = int(label)
        elif not hits:
            raise LabelNotFoundError(path, f"no label named {label!r}; labels present: {listing}", table)
        else:
            return hits[0]
    if isinstance(label, float) and not label.is_integer():
        raise ValueError(f"label must be a whole number or a segment name; got {label!r}")
    hits = [lab for lab in table if lab.value == int(label)]
    if not hits:
        raise LabelNotFoundError(path, f"label {label} is not in the scan; labels present: {listing}", table)
    return hits[0]


def extract_surface(
    path: str | os.PathLike,
    volume: LabelVolume,
    label: int | str | None,
    *,
    smooth: float = 0.0,
    method: Literal["marching_cubes", "surface_nets"] = "marching_cubes",
) -> tuple[np.ndarray, np.ndarray, Label]:
    """The closed surface of one label, in RAS millimetres.

    Parameters
    ----------
    path : str or PathLike
        The file the volume came from (for messages).
    volume : LabelVolume
        The label map.
    label : int, str or None
        Label value, or segment name where the file stores names. None picks the only label of
        a single-label map.
    smooth : float, default: 0.0
        Standard deviation (mm) of a Gaussian applied to the binary mask before marching cubes;
        for surface nets, any positive value turns on VTK's constrained smoothing.
    method : {"marching_cubes", "surface_nets"}, default: "marching_cubes"
        Marching cubes from scikit-image, or VTK's ``vtkSurfaceNets3D`` (needs VTK).

    Returns
    -------
    points : (N, 3) float64 array
        Vertices in RAS mm.
    faces : (F, 3) int64 array
        Triangles, normals pointing out of the label.
    label : Label
        The label that was extracted.
    """
    path = os.fspath(path)
    found = _find(path, volume, label)
    mask = volume.layers[found.layer] == found.value
    spacing = np.linalg.norm(volume.affine[:3, :3], axis=0)  # mm per voxel step along i, j, k
    sigma = smooth / spacing if (smooth > 0 and method == "marching_cubes") else np.zeros(3)
    pad = 2 + int(np.ceil(4 * sigma.max()))
    idx = np.argwhere(mask)
    lo = idx.min(axis=0) - pad
    hi = idx.max(axis=0) + pad + 1
    # Crop to the label (plus background all round, so the surface closes) to save work.
    box = np.zeros(hi - lo, dtype=np.float32)
    src_lo = np.maximum(lo, 0)
    src_hi = np.minimum(hi, mask.shape)
    box[tuple(slice(a - b, c - b) for a, b, c in zip(src_lo, lo, src_hi))] = mask[
        tuple(slice(a, c) for a, c in zip(src_lo, src_hi))
    ]
    if method == "marching_cubes":
        from skimage.measure import marching_cubes

        if sigma.any():
            from scipy.ndimage import gaussian_filter

            box = gaussian_filter(box, sigma=sigma, mode="constant")
        verts, faces, _, _ = marching_cubes(box, level=0.5, allow_degenerate=False)
    elif method == "surface_nets":
        verts, faces = _surface_nets(box, smooth > 0)
    else:
        raise ValueError(f"method must be 'marching_cubes' or 'surface_nets'; got {method!r}")
    ijk = verts.astype(np.float64) + lo  # back to indices of the full volume
    points = ijk @ volume.affine[:3, :3].T + volume.affine[:3, 3]
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) and signed_volume(points, faces) < 0:
        faces = faces[:, ::-1].copy()
    return points, faces, found


def _surface_nets(box: np.ndarray, smoothing: bool) -> tuple[np.ndarray, np.ndarray]:
    from .vtkio import import_vtk, polydata_to_arrays

    vtk = import_vtk("surface nets extraction")
    if not hasattr(vtk, "vtkSurfaceNets3D"):
        from .errors import MissingDependencyError

        raise MissingDependencyError("surface nets need VTK >= 9.3: pip install -U 'shapeot[vtk]'")
    image = vtk.vtkImageData()
    image.SetDimensions(*box.shape)
    # VTK images are x-fastest: Fortran order of the [i, j, k] array.
    scalars = vtk.numpy_support.numpy_to_vtk(box.astype(np.uint8).ravel(order="F"), deep=True)
    image.GetPointData().SetScalars(scalars)
    nets = vtk.vtkSurfaceNets3D()
    nets.SetInputData(image)
    nets.SetValue(0, 1)
    nets.SetOutputMeshTypeToTriangles()
    nets.SetSmoothing(bool(smoothing))
    nets.Update()
    points, faces, _ = polydata_to_arrays(nets.GetOutput())
    if faces is None:
        faces = np.zeros((0, 3), dtype=np.int64)
    return points, faces
