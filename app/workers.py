"""One generic worker: runs an engine call (a generator or a plain function) off the UI thread.

Each item a generator yields arrives as `progress`, its return value as `result`; any exception as
`error` carrying an EmberError (an unexpected one is logged with its traceback and the user is told
where the log is); `finished` always comes last. The signals are re-emitted on the UI thread, so
whatever is connected to them (lambdas included) runs there: a worker never touches a widget.

`WorkerRunner` is one window's set of threads: long jobs (generate, load, hash) each get their own
thread; short ones (counting tokens, scanning the library) share the window's QThreadPool. Closing
the window cancels every job and waits for all of them.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal

import app.qt_compat  # noqa: F401 - before any Qt call: see the module
from engine.errors import EmberError
from engine.jobs import CancelToken

log = logging.getLogger(__name__)


class Worker(QObject):
    progress = Signal(object)
    result = Signal(object)
    error = Signal(object)  # EmberError
    finished = Signal()

    # emitted from the worker thread; delivered (queued) to this object, which lives on the UI thread
    _progress = Signal(object)
    _result = Signal(object)
    _error = Signal(object)
    _finished = Signal()

    def __init__(self, fn: Callable, *args, cancel: CancelToken | None = None, log_path: Path | None = None,
                 name: str = "", **kwargs) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.cancel = cancel or CancelToken()
        self.log_path = log_path
        self.name = name or getattr(fn, "__qualname__", "job")
        self.done = threading.Event()
        self.dropped = False  # set when the window closed: late results are not delivered
        queued = Qt.ConnectionType.QueuedConnection
        self._progress.connect(self._relay_progress, queued)
        self._result.connect(self._relay_result, queued)
        self._error.connect(self._relay_error, queued)
        self._finished.connect(self._relay_finished, queued)

    def run(self) -> None:
        """The body; runs on a worker thread."""
        try:
            value = self.fn(*self.args, **self.kwargs)
            if inspect.isgenerator(value):
                try:
                    while True:
                        self._progress.emit(next(value))
                except StopIteration as stop:
                    value = stop.value
            self._result.emit(value)
        except EmberError as error:
            log.info("%s failed: %s", self.name, error)
            if error.log_path is None and self.log_path is not None:
                error.log_path = str(self.log_path)
            self._error.emit(error)
        except Exception as exc:  # a bug: keep the traceback in the log, tell the user something readable
            log.exception("unexpected error in %s", self.name)
            self._error.emit(EmberError(
                f"Something went wrong ({type(exc).__name__}: {exc}).",
                "Ember logged the details. Try again; if it keeps happening, please report it with the log.",
                log_path=str(self.log_path) if self.log_path else None))
        finally:
            self.done.set()
            self._finished.emit()

    # on the UI thread
    def _relay_progress(self, value) -> None:
        if not self.dropped:
            self.progress.emit(value)

    def _relay_result(self, value) -> None:
        if not self.dropped:
            self.result.emit(value)

    def _relay_error(self, error) -> None:
        if not self.dropped:
            self.error.emit(error)

    def _relay_finished(self) -> None:
        if not self.dropped:
            self.finished.emit()


class _Runnable(QRunnable):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def run(self) -> None:
        self.worker.run()


# The UI thread shares the GIL with the workers. Each time Qt calls back into Python (a slot, a model's
# data(), a delegate) it waits for a busy worker to let go of the GIL: up to the switch interval, 5 ms
# by default, so a repaint with a few callbacks could stall for 20-50 ms while a worker parsed a
# GGUF header. 1 ms bounds each wait; a worker only pays for it while the UI thread wants the GIL.
SWITCH_INTERVAL_S = 0.001


class WorkerRunner(QObject):
    """The threads of one window. Keeps each worker alive until its `finished` reached the UI thread."""

    def __init__(self, log_path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self.log_path = log_path
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._workers: set[Worker] = set()
        self._threads: list[threading.Thread] = []
        self.closed = False

    @property
    def busy(self) -> bool:
        return any(not w.done.is_set() for w in self._workers)

    def start(self, worker: Worker, long: bool = False) -> Worker:
        """Run `worker`: on its own thread when `long`, else on the window's pool."""
        if self.closed:  # the window is closing: the job never runs
            worker.cancel.cancel()
            worker.dropped = True
            return worker
        if worker.log_path is None:
            worker.log_path = self.log_path
        self._workers.add(worker)
        worker.finished.connect(lambda: self._workers.discard(worker))
        if long:
            thread = threading.Thread(target=worker.run, name=f"ember-{worker.name}", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
        else:
            self.pool.start(_Runnable(worker))
        return worker

    def run(self, fn: Callable, *args, long: bool = False, on_result=None, on_error=None, on_progress=None,
            on_finished=None, **kwargs) -> Worker:
        """Shorthand: make a Worker, connect the given callbacks, start it."""
        worker = Worker(fn, *args, **kwargs)
        for signal, slot in ((worker.result, on_result), (worker.error, on_error), (worker.progress, on_progress),
                             (worker.finished, on_finished)):
            if slot is not None:
                signal.connect(slot)
        return self.start(worker, long=long)

    def cancel_all(self) -> None:
        for worker in list(self._workers):
            worker.cancel.cancel()

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Cancel every job and wait for all of them (the window is closing). True if all ended."""
        self.closed = True
        self.cancel_all()
        ok = self.pool.waitForDone(int(timeout_s * 1000))
        for thread in self._threads:
            thread.join(timeout_s)
            ok = ok and not thread.is_alive()
        for worker in self._workers:
            worker.dropped = True  # the window is gone: nothing more reaches it
        if not ok:
            log.warning("some background jobs did not end within %.0f s", timeout_s)
        return ok
