"""The package's version, read from its installed metadata (pyproject.toml is the one place it is written)."""
from __future__ import annotations

import functools

__all__ = ["version"]


@functools.lru_cache(maxsize=1)
def version() -> str:
    """``shapeot``'s version as installed ("0+unknown" when run from a tree that was never installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("shapeot")
    except PackageNotFoundError:
        return "0+unknown"
