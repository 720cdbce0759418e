"""The same template in-process and on a real two-worker LocalCluster, and with a worker killed mid-run.

Four subjects of the sample cohort, the fast configuration (two coarse registration levels, two
iterations). The cluster has two single-threaded worker processes (``processes=True``,
``threads_per_worker=1``), like ``--scheduler local`` on this 2-core machine.
"""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from .conftest import fast_config

pytestmark = pytest.mark.slow  # starts Dask clusters

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def six(cohort):
    return list(cohort)[:4]


@pytest.fixture(scope="module")
def in_process(six):
    import shapeot

    return shapeot.template(six, fast_config())


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


class CountingExecutor:
    """A DaskExecutor that records what travels to the workers."""

    def __new__(cls, client):
        from shapeot.templates import DaskExecutor

        class Counting(DaskExecutor):
            def __init__(self, client):
                super().__init__(client)
                self.scattered, self.put_calls = [], 0

            def scatter(self, items):
                self.scattered.append(len(items))
                return super().scatter(items)

            def put(self, item):
                self.put_calls += 1
                return super().put(item)

        return Counting(client)


def test_same_template_on_a_local_cluster(in_process, six, client):
    import shapeot

    ex = CountingExecutor(client)
    on_dask = shapeot.template(six, fast_config(), executor=ex)
    assert on_dask.executor == "dask" and in_process.executor == "in-process"
    assert on_dask.medoid == in_process.medoid
    np.testing.assert_allclose(on_dask.alignments, in_process.alignments, atol=1e-6)
    assert np.abs(on_dask.shape.points - in_process.shape.points).max() < 1e-4  # mm
    assert np.abs(on_dask.corresponded - in_process.corresponded).max() < 1e-4
    np.testing.assert_allclose(on_dask.modes.variances, in_process.modes.variances, rtol=1e-5)
    # The subjects travelled once (one scatter of all four); the template once per iteration.
    iterations = sum(h.stage == "template" for h in on_dask.history)
    assert ex.scattered == [4] and ex.put_calls == iterations == 2
    # Work really ran on both worker processes, not here.
    assert len(client.nthreads()) == 2


def test_a_killed_worker_does_not_fail_the_run(in_process, six, client):
    """SIGKILL one busy worker as the first subject of the first iteration finishes: the nanny
    restarts it, the scheduler reruns its tasks, and the result is the same."""
    import shapeot
    from shapeot.templates import DaskExecutor

    before = client.run(os.getpid)
    killed = []

    def progress(fraction, message):
        if not killed and message.startswith("iteration 1/") and " done " in message:
            busy = [w for w, keys in client.processing().items() if keys] or list(before)
            pid = before[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        return True

    tpl = shapeot.template(six, fast_config(), executor=DaskExecutor(client), progress=progress)
    assert killed, "no worker was killed (the run finished before the first report?)"
    client.wait_for_workers(2, timeout=60)
    after = client.run(os.getpid)
    assert killed[0] not in after.values()  # that process is gone, a new one replaced it
    assert np.abs(tpl.shape.points - in_process.shape.points).max() < 1e-4


def test_scheduler_address_errors_are_clear():
    from shapeot.templates import open_executor

    with pytest.raises(ValueError, match="executor must be"):
        with open_executor(42):
            pass


def test_local_scheduler_starts_one_worker_per_core_and_stops_it():
    """``executor="local"`` (the CLI's ``--scheduler local``): a LocalCluster of single-threaded
    worker processes, one per core, that runs the tasks and is shut down on exit."""
    from shapeot.templates import DaskExecutor, open_executor
    from shapeot.templates.tasks import apply_matrix

    with open_executor("local") as ex:
        assert isinstance(ex, DaskExecutor)
        client = ex.client
        assert list(client.nthreads().values()) == [1] * (os.cpu_count() or 1)
        pids = set(client.run(os.getpid).values())
        assert os.getpid() not in pids and len(pids) == len(client.nthreads())
        m = np.eye(4)
        m[:3, 3] = [1.0, 2.0, 3.0]
        [handle] = ex.scatter([np.zeros((2, 3))])
        out = ex.map(apply_matrix, [(m, handle)], lambda i, f, msg: None)
        np.testing.assert_array_equal(out[0], [[1, 2, 3], [1, 2, 3]])
    assert client.status == "closed"
