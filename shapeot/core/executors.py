"""Where the per-subject work of a template runs: in this process, or on a Dask cluster.

Subjects are independent inside an iteration (one registration each), so a template is a series
of maps over the subjects. An executor does three things:

* ``scatter(items)``: place the subjects where the work runs, **once per run**, and return
  handles to pass to the tasks (the objects themselves in-process, Dask futures on a cluster:
  each object is the result of a task, so that the scheduler can recompute it if its worker
  dies, see :class:`DaskExecutor`);
* ``put(item)``: the same for one object shared by every task of one iteration (the template);
* ``map(fn, jobs, report)``: run ``fn(*job)`` for every job (a tuple of arguments, handles
  included) and return the results in the order of ``jobs``, calling ``report(i)`` as each job
  finishes (this is where progress and cancellation happen).

:class:`InProcessExecutor` runs the jobs one after the other, passing ``progress=`` to ``fn`` for
fine-grained progress and cancellation. :class:`DaskExecutor` wraps a ``dask.distributed``
client: tasks are retried on failure (``retries``), and a worker that dies has its tasks, and
the objects it held, recomputed by the scheduler elsewhere. No home-made process pool: for
several cores or machines, use Dask (``executor="local"`` starts a ``LocalCluster`` with one
single-threaded worker process per core; ``executor="tcp://host:8786"`` connects to a running
scheduler).

``dask`` is imported only when a Dask executor is asked for.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

__all__ = ["Executor", "InProcessExecutor", "DaskExecutor", "open_executor", "local_cluster"]


class Executor(Protocol):
    """What :func:`shapeot.template` needs from an executor (see the module docstring)."""

    name: str

    def scatter(self, items: Sequence[Any]) -> list: ...

    def put(self, item: Any) -> Any: ...

    def map(self, fn: Callable, jobs: Sequence[tuple], report: Callable[[int, float, str], None]) -> list: ...


class InProcessExecutor:
    """Run every job here, one after the other (the default)."""

    name = "in-process"

    def scatter(self, items: Sequence[Any]) -> list:
        return list(items)

    def put(self, item: Any) -> Any:
        return item

    def map(self, fn: Callable, jobs: Sequence[tuple], report: Callable[[int, float, str], None]) -> list:
        """``[fn(*job, progress=...) for job in jobs]``; ``report(i, fraction, message)`` is called
        during job i (through its ``progress``) and with fraction 1 when it ends."""
        out = []
        for i, job in enumerate(jobs):
            def progress(fraction: float, message: str, _i: int = i) -> bool:
                report(_i, fraction, message)
                return True

            out.append(fn(*job, progress=progress))
            report(i, 1.0, "done")
        return out


def _hold(item: Any) -> Any:
    """A task whose result is ``item``: how objects are placed on a Dask cluster (see DaskExecutor)."""
    return item


class DaskExecutor:
    """Run jobs as tasks of a ``dask.distributed`` cluster.

    Objects are placed on the cluster as tasks that return them (``client.submit(_hold, item)``),
    not with ``client.scatter``: the scheduler keeps the task, so if the worker that holds an
    object dies, the object is recomputed on another worker instead of being lost (scattered
    data dies with its worker, and Dask's active memory manager drops extra replicas). An object
    still leaves this process once per run.

    Parameters
    ----------
    client : distributed.Client
        A connected client (``Client(LocalCluster(...))`` or ``Client("tcp://host:8786")``).
    retries : int, default: 2
        Times a task that raised is resubmitted before the run fails.
    """

    name = "dask"

    def __init__(self, client, *, retries: int = 2):
        self.client = client
        self.retries = int(retries)

    def _place(self, item: Any, what: str):
        import uuid

        return self.client.submit(_hold, item, pure=False, key=f"shapeot-{what}-{uuid.uuid4().hex}")

    def scatter(self, items: Sequence[Any]) -> list:
        """Send the objects to the cluster once; returns one future per object."""
        return [self._place(item, "subject") for item in items]

    def put(self, item: Any) -> Any:
        """Send one object shared by the tasks of an iteration (the template) to the cluster."""
        return self._place(item, "shared")

    def map(self, fn: Callable, jobs: Sequence[tuple], report: Callable[[int, float, str], None]) -> list:
        """Submit every job, gather the results in order, ``report(i, 1.0, "done")`` as each ends.

        If ``report`` raises (a cancel) or a task fails for good, the remaining tasks are
        cancelled and the exception propagates.
        """
        from distributed import as_completed

        futures = [self.client.submit(fn, *job, pure=False, retries=self.retries) for job in jobs]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(futures)
        try:
            for future in as_completed(futures):
                i = index[future.key]
                results[i] = future.result()
                report(i, 1.0, "done")
        except BaseException:
            self.client.cancel(futures)
            raise
        finally:
            del futures
        return results


def local_cluster(n_workers: int | None = None):
    """A ``dask.distributed`` client on a new ``LocalCluster``: one single-threaded worker process
    per core (``n_workers``, default ``os.cpu_count()``), its dashboard on a free port. Close the
    client and its ``client.cluster`` when done (:func:`open_executor` does)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("a Dask scheduler needs dask.distributed: pip install 'shapeot[dask]'") from exc
    cluster = LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    return Client(cluster)


@contextlib.contextmanager
def open_executor(spec=None, *, retries: int = 2) -> Iterator[Executor]:
    """The executor named by ``spec``, closed on exit if this function created its cluster.

    Parameters
    ----------
    spec : None, "local", a scheduler address, a ``distributed.Client`` or an executor
        None: :class:`InProcessExecutor`. "local": a new ``LocalCluster`` (one worker per core),
        shut down on exit. "tcp://host:port" (any address Dask accepts): a client of that
        running cluster, disconnected on exit. A Client: used as is (not closed). Anything with
        ``scatter``, ``put`` and ``map``: used as is.
    """
    if spec is None:
        yield InProcessExecutor()
        return
    if all(hasattr(spec, m) for m in ("submit", "scatter", "gather", "replicate")):  # a distributed.Client
        yield DaskExecutor(spec, retries=retries)
        return
    if all(hasattr(spec, m) for m in ("scatter", "put", "map")):
        yield spec
        return
    if isinstance(spec, str):
        if spec == "local":
            client = local_cluster()
        else:
            try:
                from distributed import Client
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ImportError("a Dask scheduler needs dask.distributed: pip install 'shapeot[dask]'") from exc
            try:
                client = Client(spec, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise OSError(f"could not connect to the Dask scheduler at {spec}: {exc}; start one with "
                              "`dask scheduler` (and `dask worker ADDRESS`) or use --scheduler local") from exc
        try:
            yield DaskExecutor(client, retries=retries)
        finally:
            cluster = getattr(client, "cluster", None) if spec == "local" else None
            client.close()
            if cluster is not None:
                cluster.close()
        return
    raise ValueError(f"executor must be None, 'local', a Dask scheduler address, a distributed.Client or an "
                     f"executor object; got {spec!r}")
