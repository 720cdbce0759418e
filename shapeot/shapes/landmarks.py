"""Landmark files: (L, 3) points in mm, read the same way by the CLI, the API and transform files."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["read_landmarks"]


def read_landmarks(path: str | Path):
    """(L, 3) float64 landmarks (mm) from a CSV file; NaN or infinite coordinates are refused.

    Lines starting with "#" and lines whose coordinates are not numbers (a header) are skipped.
    Slicer markups (.fcsv: id, x, y, z, ...) use columns 2-4; other files their last three
    columns (x, y, z; an optional label or index may come first).
    """
    path = Path(path)
    rows = []
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if not row or row[0].lstrip().startswith("#"):
                continue
            cells = row[1:4] if path.suffix.lower() == ".fcsv" else row[-3:]
            try:
                rows.append([float(c) for c in cells])
            except ValueError:
                continue  # a header
    if not rows or any(len(r) != 3 for r in rows):
        raise ValueError(f"{path}: no landmarks found (expected rows of x, y, z in mm)")
    marks = np.asarray(rows, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(marks).all(axis=1))
    if len(bad):
        raise ValueError(f"{path}: {len(bad)} landmark(s) have NaN or infinite coordinates (first: landmark "
                       f"{bad[0] + 1}); every landmark needs finite x, y, z")
    return marks
