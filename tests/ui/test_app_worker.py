"""The task queue: order, errors, cancel, shutdown; work runs off the GUI thread."""
from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

from shapeot.ui.worker import Task, TaskQueue, describe_error

from shapeot.core.errors import Cancelled


def test_tasks_run_in_order_in_a_worker_thread_and_errors_do_not_stop_the_queue(display, qtbot):
    q = TaskQueue()
    log, gui = [], threading.get_ident()
    q.finished.connect(lambda name, result: log.append(("finished", name, result)))
    q.failed.connect(lambda name, message, details: log.append(("failed", name, message)))

    def work(value):
        def run(progress):
            assert threading.get_ident() != gui
            assert progress(0.5, "half") is True
            if value == "boom":
                raise RuntimeError("solver exploded")
            return value
        return run

    def bad_prepare():
        raise ValueError("choose a source first")

    with qtbot.waitSignal(q.idle, timeout=10_000):
        q.submit(Task("a", lambda: work(1), on_done=lambda r: log.append(("done", r))))
        q.submit(Task("b", bad_prepare))
        q.submit(Task("c", lambda: work("boom")))
        q.submit(Task("d", lambda: work(4)))
        q.submit(Task("e", lambda: work(0)), first=True)  # jumps the queue (a already runs)
    assert log == [("done", 1), ("finished", "a", 1), ("finished", "e", 0), ("failed", "b", "choose a source first"),
                   ("failed", "c", "RuntimeError: solver exploded"), ("finished", "d", 4)]
    assert not q.busy


def test_cancel_drops_pending_tasks_and_a_late_result(display, qtbot):
    q = TaskQueue()
    started, log = threading.Event(), []
    q.finished.connect(lambda *a: log.append("finished"))
    q.cancelled.connect(lambda name, s: log.append(("cancelled", name, s)))

    def ignores_cancel(progress):  # never asks: its result must still be discarded
        started.set()
        time.sleep(0.3)
        return "late"

    with qtbot.waitSignal(q.idle, timeout=10_000):
        q.submit(Task("slow", lambda: ignores_cancel))
        q.submit(Task("next", lambda: (lambda p: "never")))
        started.wait(5)
        q.cancel()
    assert len(log) == 1 and log[0][:2] == ("cancelled", "slow") and 0.0 < log[0][2] < 1.0

    def polite(progress):
        while progress(0.1, "working"):
            time.sleep(0.01)
        raise Cancelled("stopped")

    with qtbot.waitSignal(q.cancelled, timeout=5_000) as blocker:
        q.submit(Task("polite", lambda: polite))
        qtbot.waitUntil(lambda: q.current_name == "polite")
        q.cancel()
    assert blocker.args[1] < 0.5


def test_shutdown_waits_and_no_result_reaches_a_closed_window(display, qtbot):
    q = TaskQueue()
    done = []
    q.submit(Task("short", lambda: (lambda p: time.sleep(0.2) or 1), on_done=done.append))
    assert q.shutdown(5.0)
    q.submit(Task("after", lambda: (lambda p: 2), on_done=done.append))
    qtbot.wait(300)
    assert done == [] and not q.busy


def test_describe_error_keeps_user_messages_plain():
    assert describe_error(ValueError("bad blur"))[0] == "bad blur"
    assert "x.vtp" in describe_error(FileNotFoundError(2, "No such file", "x.vtp"))[0]
    message, details = describe_error(KeyError("k"))
    assert message == "KeyError: 'k'" and "KeyError" in details
    assert describe_error(RuntimeError("x"))[0] == "RuntimeError: x"
