"""Reading and writing surface files: STL, PLY, OBJ, OFF, VTK, VTP, GIfTI and FreeSurfer.

Each reader returns a :class:`RawMesh` exactly as the file holds it (polygons already split into
triangles); cleaning and validation happen in :func:`shapeot.shapes.io.load`. Each writer takes
arrays and a path it may write freely (the caller writes to a temporary file and renames it).

Who reads what, and why:

- STL, PLY, OBJ, OFF: meshio (pure Python, a core dependency).
- VTK legacy (.vtk): VTK when installed (keeps polydata and every point array), else meshio.
- VTP: VTK only (``pip install shapeot[vtk]``).
- GIfTI (.gii, .gii.gz) and FreeSurfer surfaces (lh.pial, rh.white, ...): nibabel.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from .errors import MissingDependencyError, ShapeFileError
from .geometry import triangulate

__all__ = ["RawMesh", "read_mesh", "write_mesh", "MESH_FORMATS"]

# format -> can it store (point clouds, point data)
MESH_FORMATS: dict[str, tuple[bool, bool]] = {
    "vtk": (True, True),
    "vtp": (True, True),
    "stl": (False, False),
    "ply": (True, True),
    "obj": (True, False),
    "off": (True, False),
    "gifti": (True, True),
    "gifti_gz": (True, True),
    "freesurfer": (False, False),
}


class RawMesh(NamedTuple):
    """What a reader found: points (N, 3), triangles (F, 3) or None, point arrays, metadata."""

    points: np.ndarray
    faces: np.ndarray | None
    point_data: dict[str, np.ndarray]
    meta: dict[str, Any]


@contextlib.contextmanager
def _quiet():
    """meshio prints warnings on stdout; keep a library call silent.

    Its STL sniffing also overflows a numpy integer on foreign files (a RuntimeWarning):
    harmless, since a file it cannot parse raises anyway.
    """
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ------------------------------------------------------------------------------------ meshio
_SPLIT = re.compile(r"^(.*)__(\d+)$")


class _Promise(NamedTuple):
    """What a file's header (or its lines) says it holds: vertices, polygons (None: unknown)."""

    n_points: int | None
    n_polygons: int | None


def _text_head(path: str, fmt: str, nbytes: int = 1 << 16) -> str:
    with open(path, "rb") as fh:
        head = fh.read(nbytes)
    if b"\x00" in head:
        raise ShapeFileError(path, f"is not a valid {fmt.upper()} file (binary data where text was expected)")
    return head.decode("latin-1")


def _ply_promise(path: str) -> _Promise:
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if not head.startswith(b"ply"):
        raise ShapeFileError(path, "is not a valid PLY file (it does not start with 'ply')")
    end = head.find(b"end_header")
    if end < 0:
        raise ShapeFileError(path, "is not a valid PLY file (no 'end_header' line)")
    counts: dict[str, int] = {}
    props: dict[str, list[str]] = {}
    element = None
    for line in head[:end].decode("latin-1").splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "element":
            element = words[1]
            try:
                counts[element] = int(words[2])
            except ValueError:
                raise ShapeFileError(path, f"is not a valid PLY file (bad element line {line!r})") from None
            props[element] = []
        elif len(words) >= 3 and words[0] == "property" and element is not None:
            props[element].append(words[-1])
    if "vertex" not in counts:
        raise ShapeFileError(path, "is not a valid PLY file (no 'element vertex' in the header)")
    missing = [c for c in "xyz" if c not in props["vertex"]]
    if missing:
        raise ShapeFileError(path, f"points must be 3D; the PLY vertices have no {', '.join(missing)} property "
                                   f"(properties: {', '.join(props['vertex']) or 'none'})")
    return _Promise(counts["vertex"], counts.get("face"))


def _off_promise(path: str) -> _Promise:
    text = _text_head(path, "off")
    tokens: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            tokens.extend(line.split())
        if len(tokens) >= 4:
            break
    if not tokens or not tokens[0].upper().endswith("OFF"):
        raise ShapeFileError(path, "is not a valid OFF file (it does not start with 'OFF')")
    try:
        nv, nf = int(tokens[1]), int(tokens[2])
    except (IndexError, ValueError):
        raise ShapeFileError(path, "is not a valid OFF file (no 'vertices faces edges' counts line)") from None
    return _Promise(nv, nf)


def _obj_promise(path: str) -> _Promise:
    with open(path, "rb") as fh:
        raw = fh.read()
    if b"\x00" in raw[: 1 << 16]:
        raise ShapeFileError(path, "is not a valid OBJ file (binary data where text was expected)")
    text = raw.decode("latin-1")
    counts = {"v": 0, "vn": 0, "vt": 0, "f": 0}
    for line in text.splitlines():
        words = line.split(None, 1)
        if words and words[0] in counts:
            counts[words[0]] += 1
            if words[0] == "v" and len(words) > 1 and len(words[1].split()) < 3:
                raise ShapeFileError(path, f"points must be 3D; the OBJ vertex line {line.strip()!r} has "
                                           f"{len(words[1].split())} coordinates")
    if counts["v"] == 0:
        return _Promise(0, 0)
    if raw and not raw.endswith((b"\n", b"\r")):
        raise ShapeFileError(path, "ends in the middle of a line: the file is truncated")
    if counts["f"] == 0 and (counts["vn"] or counts["vt"]):
        raise ShapeFileError(path, "has vertex normals or texture coordinates but no faces: the file is truncated "
                                   "(or the faces are missing)")
    return _Promise(counts["v"], counts["f"])


def _stl_promise(path: str) -> _Promise:
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(84)
        if size >= 84:
            n = int.from_bytes(head[80:84], "little")
            if 84 + 50 * n == size:
                return _Promise(None, n)  # binary
        fh.seek(max(size - 1024, 0))
        tail = fh.read()
    if head.lstrip().lower().startswith(b"solid") and b"endsolid" in tail.lower():
        return _Promise(None, None)  # ASCII, complete
    if head.lstrip().lower().startswith(b"solid"):
        raise ShapeFileError(path, "is an ASCII STL file without its 'endsolid' line: the file is truncated")
    n = int.from_bytes(head[80:84], "little") if size >= 84 else 0
    raise ShapeFileError(path, f"is not a valid STL file: as a binary STL its header promises {n} triangles "
                               f"({84 + 50 * n} bytes) but the file has {size} bytes; as an ASCII STL it does not "
                               "start with 'solid'")


_PROMISES = {"ply": _ply_promise, "off": _off_promise, "obj": _obj_promise, "stl": _stl_promise}


def _read_meshio(path: str, fmt: str) -> RawMesh:
    import meshio

    promise = _PROMISES[fmt](path) if fmt in _PROMISES else _Promise(None, None)
    if promise.n_points == 0:
        return RawMesh(np.zeros((0, 3)), None, {}, {})
    try:
        with _quiet():
            mesh = meshio.read(path, file_format=fmt)
    except SystemExit as exc:  # meshio calls sys.exit(1) on some unreadable files
        raise ShapeFileError(path, f"meshio cannot read it as {fmt.upper()}") from exc
    except Exception as exc:  # noqa: BLE001 - the header was fine, the body is not
        raise ShapeFileError(path, f"is truncated or corrupt: its {fmt.upper()} data cannot be read "
                                   f"({type(exc).__name__}: {exc})") from exc
    blocks = [c.data for c in mesh.cells if c.type not in ("vertex", "line")]
    polygons = [np.asarray(b) for b in blocks if np.asarray(b).ndim == 2]
    n_points = len(mesh.points)
    n_polygons = sum(len(b) for b in polygons)
    if promise.n_points is not None and n_points != promise.n_points:
        raise ShapeFileError(path, f"the file promises {promise.n_points} vertices but holds {n_points}: "
                                   "it is truncated or corrupt")
    if promise.n_polygons is not None and n_polygons != promise.n_polygons:
        raise ShapeFileError(path, f"the file promises {promise.n_polygons} faces but holds {n_polygons}: "
                                   "it is truncated or corrupt")
    faces = triangulate(polygons) if polygons else None
    if faces is not None and len(faces) == 0:
        faces = None
    data = {k: np.asarray(v) for k, v in mesh.point_data.items()}
    for key, value in data.items():
        if len(value) != n_points:
            raise ShapeFileError(path, f"point array {key!r} has {len(value)} entries for {n_points} vertices")
    if fmt == "ply":
        data = _join_components(data)
    return RawMesh(np.asarray(mesh.points, dtype=np.float64), faces, data, {})


def _join_components(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Undo :func:`_split_components`: ``d__0, d__1, d__2`` become one (N, 3) array ``d``."""
    groups: dict[str, dict[int, np.ndarray]] = {}
    out = {}
    for key, value in data.items():
        m = _SPLIT.match(key)
        if m:
            groups.setdefault(m.group(1), {})[int(m.group(2))] = value
        else:
            out[key] = value
    for key, parts in groups.items():
        if sorted(parts) == list(range(len(parts))):
            out[key] = np.stack([parts[i] for i in range(len(parts))], axis=1)
        else:  # not our naming after all: keep the columns as they are
            out.update({f"{key}__{i}": v for i, v in parts.items()})
    return out


def _split_components(data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PLY holds scalar vertex properties only: store an (N, k) array as k named columns."""
    out = {}
    for key, value in data.items():
        value = np.asarray(value)
        if value.dtype == np.int64:
            value = value.astype(np.int32)  # PLY has no 64-bit integers
        if value.ndim == 1:
            out[key] = value
        else:
            flat = value.reshape(len(value), -1)
            out.update({f"{key}__{i}": flat[:, i] for i in range(flat.shape[1])})
    return out


def _write_meshio(path: str, fmt: str, points, faces, point_data) -> None:
    import meshio

    cells = [("triangle", np.asarray(faces, dtype=np.int32 if fmt == "ply" else np.int64))] if faces is not None else []
    data = {}
    if fmt == "ply":
        data = _split_components(point_data)
    elif fmt == "vtk":
        data = {k: np.asarray(v) for k, v in point_data.items()}
    if fmt == "vtk" and faces is None:
        cells = [("vertex", np.arange(len(points))[:, None])]
    mesh = meshio.Mesh(np.asarray(points, dtype=np.float64), cells, point_data=data)
    kwargs = {"binary": True} if fmt in ("stl", "ply", "vtk") else {}
    with _quiet():
        meshio.write(path, mesh, file_format=fmt, **kwargs)


# ------------------------------------------------------------------------------------ GIfTI
def _gifti_image(path: str):
    import nibabel as nib

    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":  # .gii.gz, or a gzipped file misnamed .gii
        raw = gzip.decompress(raw)
    return nib.gifti.GiftiImage.from_bytes(raw)


def _read_gifti(path: str) -> RawMesh:
    import nibabel as nib

    img = _gifti_image(path)
    pointset = nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"]
    triangle = nib.nifti1.intent_codes["NIFTI_INTENT_TRIANGLE"]
    pts = [d for d in img.darrays if d.intent == pointset]
    if not pts:
        raise ShapeFileError(path, "this GIfTI file holds no surface (no NIFTI_INTENT_POINTSET array)")
    points = np.asarray(pts[0].data, dtype=np.float64)
    tris = [d for d in img.darrays if d.intent == triangle]
    faces = np.asarray(tris[0].data, dtype=np.int64) if tris else None
    data = {}
    for i, d in enumerate(img.darrays):
        if d.intent in (pointset, triangle):
            continue
        arr = np.asarray(d.data)
        if arr.ndim >= 1 and len(arr) == len(points):
            name = d.meta.get("Name", f"array{i}") if d.meta is not None else f"array{i}"
            data[name] = arr
    meta: dict[str, Any] = {"gifti_coordsys": None, "units": "mm"}  # GIfTI pointsets are millimetres (GIfTI 1.0, 2.3.4)
    cs = pts[0].coordsys
    if cs is not None:
        meta["gifti_coordsys"] = (int(cs.dataspace), int(cs.xformspace), np.asarray(cs.xform).tolist())
    return RawMesh(points, faces, data, meta)


def _write_gifti(path: str, gz: bool, points, faces, point_data, meta) -> None:
    import nibabel as nib

    gi = nib.gifti
    # float32 is what FreeSurfer, Workbench and nilearn expect in a GIfTI pointset.
    arrays = [gi.GiftiDataArray(np.asarray(points, dtype=np.float32), intent="NIFTI_INTENT_POINTSET",
                                datatype="NIFTI_TYPE_FLOAT32")]
    saved = meta.get("gifti_coordsys")
    if saved:
        arrays[0].coordsys = gi.GiftiCoordSystem(saved[0], saved[1], np.asarray(saved[2]))
    if faces is not None:
        arrays.append(gi.GiftiDataArray(np.asarray(faces, dtype=np.int32), intent="NIFTI_INTENT_TRIANGLE",
                                        datatype="NIFTI_TYPE_INT32"))
    for key, value in point_data.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating):
            value, dtype = value.astype(np.float32), "NIFTI_TYPE_FLOAT32"
        else:
            value, dtype = value.astype(np.int32), "NIFTI_TYPE_INT32"
        intent = "NIFTI_INTENT_VECTOR" if value.ndim > 1 else "NIFTI_INTENT_SHAPE"
        arrays.append(gi.GiftiDataArray(value, intent=intent, datatype=dtype, meta={"Name": key}))
    img = gi.GiftiImage(darrays=arrays)
    payload = img.to_bytes()
    with open(path, "wb") as fh:
        fh.write(gzip.compress(payload, mtime=0) if gz else payload)


# ------------------------------------------------------------------------------------ FreeSurfer
FREESURFER_MAGIC = b"\xff\xff\xfe"  # triangle surface file


def _read_freesurfer(path: str) -> RawMesh:
    from nibabel.freesurfer import read_geometry

    with warnings.catch_warnings():
        # nibabel warns when a surface has no volume_info, which is common and harmless here.
        warnings.simplefilter("ignore", UserWarning)
        coords, faces, volume_info = read_geometry(path, read_metadata=True)
    points = np.asarray(coords, dtype=np.float64)
    meta: dict[str, Any] = {"units": "mm"}  # FreeSurfer surfaces are millimetres
    cras = _cras(volume_info)
    if cras is not None:
        # FreeSurfer stores tkr-RAS; adding c_ras gives scanner RAS, the frame of the volume's
        # affine (orig.mgz, aseg.mgz), so surfaces and label maps line up.
        points = points + cras
        meta["freesurfer_volume_info"] = dict(volume_info)
    return RawMesh(points, np.asarray(faces, dtype=np.int64), {}, meta)


def _cras(volume_info: Mapping | None) -> np.ndarray | None:
    if not volume_info or "cras" not in volume_info:
        return None
    valid = str(volume_info.get("valid", "1"))
    if not valid.strip().startswith("1"):
        return None
    return np.asarray(volume_info["cras"], dtype=np.float64)


def _write_freesurfer(path: str, points, faces, meta) -> None:
    from nibabel.freesurfer import write_geometry

    volume_info = meta.get("freesurfer_volume_info")
    cras = _cras(volume_info)
    coords = np.asarray(points, dtype=np.float64) - (cras if cras is not None else 0.0)
    write_geometry(path, coords, np.asarray(faces, dtype=np.int32), volume_info=volume_info or None)


# ------------------------------------------------------------------------------------ dispatch
def read_mesh(path: str | os.PathLike, fmt: str) -> RawMesh:
    """Read a surface file of format ``fmt`` (a key of :data:`MESH_FORMATS`).

    Raises
    ------
    ShapeFileError
        If the reader fails; the message names the file and the reader's complaint.
    MissingDependencyError
        If the format needs VTK and VTK is not installed.
    """
    path = os.fspath(path)
    try:
        if fmt == "vtp":
            from .vtkio import read_polydata

            return RawMesh(*read_polydata(path, "vtp"))
        if fmt == "vtk":
            try:
                from .vtkio import read_polydata

                return RawMesh(*read_polydata(path, "vtk"))
            except MissingDependencyError as missing:
                with open(path, "rb") as fh:
                    head = fh.read(512)
                if not head.lstrip().startswith(b"# vtk DataFile"):
                    raise ShapeFileError(path, "is not a VTK legacy file (no '# vtk DataFile' header)") from None
                if b"POLYDATA" in head:
                    # meshio reads legacy unstructured grids only; POLYDATA needs VTK.
                    raise missing from None
                return _read_meshio(path, "vtk")
        if fmt in ("stl", "ply", "obj", "off"):
            return _read_meshio(path, fmt)
        if fmt in ("gifti", "gifti_gz"):
            return _read_gifti(path)
        if fmt == "freesurfer":
            return _read_freesurfer(path)
    except (ShapeFileError, MissingDependencyError):
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a corrupt file for the user
        raise ShapeFileError(path, f"cannot be read as {fmt.upper()}: {type(exc).__name__}: {exc}") from exc
    raise ValueError(f"unknown mesh format {fmt!r}")


def write_mesh(
    path: str | os.PathLike,
    fmt: str,
    points: np.ndarray,
    faces: np.ndarray | None,
    point_data: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
) -> None:
    """Write a surface (or a point cloud, where the format allows it) in format ``fmt``.

    ``path`` is written as given, whatever its extension: the caller picks the format.
    """
    path = os.fspath(path)
    if fmt in ("vtk", "vtp"):
        try:
            from .vtkio import write_polydata

            return write_polydata(path, fmt, points, faces, point_data, units=meta.get("units"))
        except MissingDependencyError:
            if fmt == "vtp":
                raise
        return _write_meshio(path, "vtk", points, faces, point_data)
    if fmt in ("stl", "ply", "obj", "off"):
        return _write_meshio(path, fmt, points, faces, point_data)
    if fmt in ("gifti", "gifti_gz"):
        return _write_gifti(path, fmt == "gifti_gz", points, faces, point_data, meta)
    if fmt == "freesurfer":
        return _write_freesurfer(path, points, faces, meta)
    raise ValueError(f"unknown mesh format {fmt!r}")
