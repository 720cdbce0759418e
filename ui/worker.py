"""Run long computations off the GUI thread: a FIFO of tasks, one worker QThread at a time.

A task is prepared on the GUI thread (``prepare()`` reads the current selection and parameters
and returns the work function), runs in a worker thread (``work(progress)``, which must not touch
Qt widgets or VTK), and hands its result back to the GUI thread (``on_done(result)``), where
layers are built. The library's progress callback ``progress(fraction, message) -> bool`` is fed
by the worker: it forwards the progress as a Qt signal and returns False once Cancel was
pressed, which makes the library raise :class:`shapeot.core.errors.Cancelled` and leave nothing
behind. A result that arrives after Cancel is discarded.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PyQt5.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from shapeot.core.errors import Cancelled

__all__ = ["Task", "TaskQueue", "describe_error"]

ProgressCallback = Callable[[float, str], bool]
Work = Callable[[ProgressCallback], Any]


@dataclass
class Task:
    """One unit of work.

    Attributes
    ----------
    name : str
        Shown in the status bar and passed to the queue's signals ("register", "load", ...).
    prepare : callable() -> work
        Runs on the GUI thread when the task starts; returns ``work(progress) -> result``, which
        runs in the worker thread. Raising here fails the task (its message goes to the user).
    on_done : callable(result), optional
        Runs on the GUI thread with the result.
    """

    name: str
    prepare: Callable[[], Work]
    on_done: Callable[[Any], None] | None = None


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(one-paragraph message for a dialog, full traceback for its details) of an exception.

    Errors meant for users (bad files, missing labels, invalid parameters: ``ValueError`` and
    ``OSError`` subclasses) are shown as their message; anything else is prefixed by its type.
    """
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    if not isinstance(exc, (ValueError, OSError, ImportError)):
        text = f"{type(exc).__name__}: {text}"
    return text, details


class _Worker(QObject):
    """Runs one work function in its thread and reports through signals."""

    progress = pyqtSignal(float, str)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str, str)
    cancelled = pyqtSignal()

    def __init__(self, work: Work) -> None:
        super().__init__()
        self._work = work
        self._stop = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next progress call (thread-safe)."""
        self._stop.set()

    def _report(self, fraction: float, message: str) -> bool:
        if self._stop.is_set():
            return False
        self.progress.emit(float(fraction), str(message))
        return True

    @pyqtSlot()
    def run(self) -> None:
        try:
            self._run()
        finally:
            # End the thread's event loop from inside: the GUI thread may be blocked in
            # QThread.wait() (closing the app) and unable to deliver a quit().
            QThread.currentThread().quit()

    def _run(self) -> None:
        try:
            result = self._work(self._report)
        except Cancelled:
            self.cancelled.emit()
            return
        except BaseException as exc:  # noqa: BLE001 - any failure becomes a message, never a crash
            self.failed.emit(*describe_error(exc))
            return
        if self._stop.is_set():  # finished after Cancel: the user no longer wants it
            self.cancelled.emit()
        else:
            self.finished.emit(result)


class TaskQueue(QObject):
    """Runs :class:`Task` objects one after the other, each in a fresh worker thread.

    Signals
    -------
    started(name)
    progress(fraction, message)
        From the running task's progress callback.
    finished(name, result)
        After the task's ``on_done`` ran.
    failed(name, message, details)
        The task raised (in ``prepare``, ``work`` or ``on_done``); the next task runs.
    cancelled(name, seconds)
        The task stopped after Cancel; ``seconds`` from the Cancel to the worker's stop.
        Pending tasks are dropped.
    idle()
        Nothing is running and nothing is pending.
    """

    started = pyqtSignal(str)
    progress = pyqtSignal(float, str)
    finished = pyqtSignal(str, object)
    failed = pyqtSignal(str, str, str)
    cancelled = pyqtSignal(str, float)
    idle = pyqtSignal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: deque[Task] = deque()
        self._current: tuple[Task, _Worker, QThread] | None = None
        self._cancel_time: float | None = None
        self._starting = False
        self._closed = False

    @property
    def busy(self) -> bool:
        """True while a task runs or waits."""
        return self._current is not None or bool(self._pending) or self._starting

    @property
    def current_name(self) -> str | None:
        """Name of the running task, if any."""
        return self._current[0].name if self._current else None

    def submit(self, task: Task, *, first: bool = False) -> None:
        """Queue ``task`` (at the head with ``first=True``, e.g. for a follow-up of the running
        task) and start it if nothing runs."""
        if self._closed:
            return
        if first:
            self._pending.appendleft(task)
        else:
            self._pending.append(task)
        self._next()

    def cancel(self) -> None:
        """Stop the running task at its next progress call and drop the pending ones."""
        self._pending.clear()
        if self._current is not None and self._cancel_time is None:
            self._cancel_time = time.perf_counter()
            self._current[1].cancel()

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Cancel everything, block until the worker thread ended, and accept no more work
        (for closing the app: no result may reach a closed window).

        Returns
        -------
        bool
            False if the thread was still running after ``timeout_s``.
        """
        self._closed = True
        self.cancel()
        if self._current is None:
            return True
        stopped = self._current[2].wait(int(timeout_s * 1000))
        if stopped:
            self._end()
        return stopped

    def _next(self) -> None:
        if self._closed:
            self._pending.clear()
            return
        while self._current is None and self._pending:
            task = self._pending.popleft()
            self._starting = True
            try:
                work = task.prepare()
            except Exception as exc:  # noqa: BLE001
                self._starting = False
                self.failed.emit(task.name, *describe_error(exc))
                continue
            self._starting = False
            worker, thread = _Worker(work), QThread()
            worker.moveToThread(thread)
            thread.started.connect(worker.run)
            worker.progress.connect(self.progress)
            worker.finished.connect(self._on_finished)
            worker.failed.connect(self._on_failed)
            worker.cancelled.connect(self._on_cancelled)
            self._current = (task, worker, thread)
            self._cancel_time = None
            self.started.emit(task.name)
            thread.start()
            return
        if self._current is None and not self._pending:
            self.idle.emit()

    def _stale(self) -> bool:
        """True for a signal of a worker that is no longer the current one (after shutdown)."""
        return self._current is None or self.sender() is not self._current[1]

    def _end(self) -> Task:
        task, worker, thread = self._current
        thread.quit()
        thread.wait()
        worker.deleteLater()
        thread.deleteLater()
        self._current = None
        return task

    @pyqtSlot(object)
    def _on_finished(self, result: Any) -> None:
        if self._stale():
            return
        task = self._end()
        if self._closed:  # the window is gone: drop the result
            return
        try:
            if task.on_done is not None:
                task.on_done(result)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(task.name, *describe_error(exc))
        else:
            self.finished.emit(task.name, result)
        self._next()

    @pyqtSlot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        if self._stale():
            return
        task = self._end()
        if self._closed:
            return
        self.failed.emit(task.name, message, details)
        self._next()

    @pyqtSlot()
    def _on_cancelled(self) -> None:
        if self._stale():
            return
        seconds = time.perf_counter() - self._cancel_time if self._cancel_time is not None else 0.0
        task = self._end()
        self._cancel_time = None
        self._pending.clear()
        if self._closed:
            return
        self.cancelled.emit(task.name, seconds)
        self._next()
