"""shapeot.core: the bottom layer, which imports nothing else of shapeot.

* :mod:`.progress`: progress reporting and cancellation (one rule for the engine, the pipelines,
  the app and the Slicer module);
* :mod:`.executors`: where independent jobs run: in this process, or on a Dask cluster;
* :mod:`.outputs`: the one staged, atomic, exclusive writer, and the CSV and JSON text formats;
* :mod:`.formats`: file-name suffixes and the formats they name;
* :mod:`.pooling`: weighted grid pooling of points (the coarse samplings of every pipeline);
* :mod:`.errors`, :mod:`.version`.

Every other layer may import from here; this package imports only the standard library, numpy
and (lazily) dask.
"""
from .errors import Cancelled
from .progress import Progress, ProgressCallback, as_progress
from .version import version

__all__ = ["Cancelled", "Progress", "ProgressCallback", "as_progress", "version"]
