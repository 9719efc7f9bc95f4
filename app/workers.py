"""One generic worker: runs an engine call (a generator or a plain function) off the UI thread.

Each item the generator yields is emitted as `progress`; its return value as `result`. Any
exception becomes `error` with an EmberError (an unexpected one points at the log). Only signals
cross threads: the worker never touches a widget.
"""

from __future__ import annotations

import inspect
import logging

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.errors import EmberError
from engine.jobs import CancelToken

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    progress = Signal(object)
    result = Signal(object)
    error = Signal(object)
    finished = Signal()


class Worker(QRunnable):
    def __init__(self, fn, *args, cancel: CancelToken | None = None, **kwargs) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.cancel = cancel or CancelToken()
        self.signals = WorkerSignals()
        self.setAutoDelete(False)  # Python owns it; WorkerPools keeps it alive until finished

    def run(self) -> None:
        try:
            value = self.fn(*self.args, **self.kwargs)
            if inspect.isgenerator(value):
                try:
                    while True:
                        self.signals.progress.emit(next(value))
                except StopIteration as stop:
                    value = stop.value
            self.signals.result.emit(value)
        except EmberError as error:
            log.info("job failed: %s", error)
            self.signals.error.emit(error)
        except Exception as exc:  # a bug: log the traceback, show a readable message
            log.exception("unexpected error in a background job")
            self.signals.error.emit(EmberError(f"Something went wrong: {type(exc).__name__}: {exc}",
                                               "Details are in Ember's log (logs/ember.log)."))
        finally:
            self.signals.finished.emit()


class WorkerPools:
    """The window's pools: short jobs share two threads; each long job (generate, load) gets its own."""

    def __init__(self) -> None:
        self.short = QThreadPool()
        self.short.setMaxThreadCount(2)
        self.long = QThreadPool()
        self.long.setMaxThreadCount(8)
        self._running: set[Worker] = set()

    def start(self, worker: Worker, long: bool = False) -> Worker:
        self._running.add(worker)
        worker.signals.finished.connect(lambda: self._running.discard(worker))
        (self.long if long else self.short).start(worker)
        return worker

    def cancel_all(self) -> None:
        for worker in list(self._running):
            worker.cancel.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        return self.long.waitForDone(msecs) and self.short.waitForDone(msecs)
