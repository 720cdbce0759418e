"""Read MetaImage (.mha, .mhd + raw) scalar volumes with their geometry, following ITK.

Why shapeot reads these itself: VTK's ``vtkMetaImageReader`` (9.x) puts the ``TransformMatrix``
triplets into the rows of the direction matrix while ITK, SimpleITK and 3D Slicer take triplet i
as the direction of image axis i (a column); the two disagree on every rotated image. SimpleITK
would be the reference reader but is a 50 MB dependency for a ``key = value`` header and a
block of raw (optionally zlib-compressed) voxels. The tests check this reader against SimpleITK
where it is installed.

Coordinates: MetaImage (like all ITK formats) stores physical points in LPS millimetres.
"""
from __future__ import annotations

import os
import zlib

import numpy as np

from .errors import ShapeFileError

__all__ = ["read_metaimage"]

_TYPES = {
    "MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2",
    "MET_INT": "i4", "MET_UINT": "u4", "MET_LONG": "i4", "MET_ULONG": "u4",
    "MET_LONG_LONG": "i8", "MET_ULONG_LONG": "u8", "MET_FLOAT": "f4", "MET_DOUBLE": "f8",
}


def _parse_header(path: str) -> tuple[dict[str, str], int]:
    """Header fields and the byte offset where LOCAL data starts."""
    fields: dict[str, str] = {}
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)  # headers are a few hundred bytes
    pos = 0
    while pos < len(head):
        end = head.find(b"\n", pos)
        if end < 0:
            end = len(head)
        line = head[pos:end].decode("latin-1").strip()
        pos = end + 1
        if not line:
            continue
        if "=" not in line:
            raise ShapeFileError(path, f"not a MetaImage header (line {line[:40]!r} has no '=')")
        key, value = (s.strip() for s in line.split("=", 1))
        fields[key] = value
        if key == "ElementDataFile":
            return fields, pos
    raise ShapeFileError(path, "not a MetaImage file (no ElementDataFile field)")


def _floats(fields: dict[str, str], keys: tuple[str, ...], n: int, default: list[float], path: str) -> np.ndarray:
    for key in keys:
        if key in fields:
            try:
                vals = [float(v) for v in fields[key].split()]
            except ValueError as exc:
                raise ShapeFileError(path, f"bad {key} {fields[key]!r}") from exc
            if len(vals) != n:
                raise ShapeFileError(path, f"{key} has {len(vals)} values; expected {n}")
            return np.asarray(vals)
    return np.asarray(default, dtype=np.float64)


def read_metaimage(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D scalar MetaImage.

    Parameters
    ----------
    path : str or PathLike
        A ``.mha`` file (header and data together) or a ``.mhd`` header naming its data file.

    Returns
    -------
    data : (I, J, K) array
        Voxel values, indexed [i, j, k] along the file's x, y, z axes.
    affine_lps : (4, 4) float array
        Maps homogeneous voxel indices (i, j, k, 1) to LPS millimetres:
        ``x = Offset + TransformMatrix^T-as-columns @ (ElementSpacing * ijk)``.

    Raises
    ------
    ShapeFileError
        For a header it cannot understand, missing or truncated data, or a non-3D image.
    """
    path = os.fspath(path)
    fields, data_start = _parse_header(path)
    ndims = int(fields.get("NDims", "0") or 0)
    if ndims != 3:
        raise ShapeFileError(path, f"is a {ndims}D MetaImage; a 3D label map is needed")
    try:
        dims = [int(v) for v in fields["DimSize"].split()]
        dtype = np.dtype(_TYPES[fields["ElementType"]])
    except KeyError as exc:
        raise ShapeFileError(path, f"MetaImage header lacks or has a bad {exc.args[0]}") from exc
    if int(fields.get("ElementNumberOfChannels", "1")) != 1:
        raise ShapeFileError(path, "has several channels per voxel; a label map has one")
    msb = fields.get("BinaryDataByteOrderMSB", fields.get("ElementByteOrderMSB", "False")).lower() == "true"
    dtype = dtype.newbyteorder(">" if msb else "<")

    spacing = _floats(fields, ("ElementSpacing", "ElementSize"), 3, [1, 1, 1], path)
    origin = _floats(fields, ("Offset", "Origin", "Position"), 3, [0, 0, 0], path)
    matrix = _floats(fields, ("TransformMatrix", "Rotation", "Orientation"), 9, list(np.eye(3).ravel()), path)
    # ITK convention: triplet i is the direction of axis i, so the triplets are the columns.
    direction = matrix.reshape(3, 3).T

    data_file = fields["ElementDataFile"]
    if data_file == "LOCAL":
        with open(path, "rb") as fh:
            fh.seek(data_start)
            raw = fh.read()
    elif data_file.upper().startswith("LIST") or "%" in data_file:
        raise ShapeFileError(path, "MetaImage with one data file per slice is not supported")
    else:
        target = os.path.join(os.path.dirname(path), data_file)
        if not os.path.exists(target):
            raise ShapeFileError(path, f"its data file {data_file!r} does not exist")
        with open(target, "rb") as fh:
            skip = int(fields.get("HeaderSize", "0"))
            if skip > 0:
                fh.seek(skip)
            raw = fh.read()
    if fields.get("CompressedData", "False").lower() == "true":
        try:
            raw = zlib.decompress(raw)
        except zlib.error as exc:
            raise ShapeFileError(path, f"its compressed voxel data is corrupt ({exc})") from exc
    n = int(np.prod(dims))
    if len(raw) < n * dtype.itemsize:
        raise ShapeFileError(path, f"voxel data is truncated ({len(raw)} bytes for {n} voxels of {dtype.itemsize})")
    # x varies fastest in the file: that is Fortran order for an [i, j, k] array.
    data = np.frombuffer(raw, dtype=dtype, count=n).reshape(dims, order="F").astype(dtype.newbyteorder("="))
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing[None, :]
    affine[:3, 3] = origin
    return data, affine
