"""The one owner of the model library in the app: scans, added files and folders, deletions, hashing.

Every page that shows models (the Chat page's picker, the Models page's library) reads the same
LibraryModel, which only this controller fills. Library jobs run one at a time on a worker, each
followed by a scan, so a scan that listed the files before a download finished can never run beside
a later one and remove the new file's row. An edit publishes `Changes(library=True)`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.changes import ChangeNotice, Changes
from app.models.library_model import LibraryModel
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.jobs import CancelToken, Progress
from engine.library.library import Library, LibraryEntry, model_folders

LibraryAction = Callable[[Library], object]  # runs on the worker, with the worker's own Library


class LibraryController(QObject):
    library_changed = Signal(list)  # list[LibraryEntry], after every scan
    opened = Signal(object)  # LibraryEntry the user just opened (Open GGUF…, a drop on the Chat page)
    hashed = Signal(str, str)  # path, SHA-256
    progress = Signal(object)  # Progress of a hash
    failed = Signal(object)  # EmberError

    def __init__(self, services: Services, runner: WorkerRunner, notices: ChangeNotice, parent=None) -> None:
        super().__init__(parent)
        self.services, self.runner, self.notices = services, runner, notices
        self.model = LibraryModel(self)
        self._jobs: deque[tuple[LibraryAction | None, Callable | None, bool]] = deque()
        self._running = False

    @property
    def entries(self) -> list[LibraryEntry]:
        return self.model.entries()

    def entry(self, path: str) -> LibraryEntry | None:
        row = self.model.row_of(path)
        return self.model.entry_at(row) if row >= 0 else None

    # --- jobs: one at a time, each followed by a scan -------------------------------------------
    def scan(self) -> None:
        """Rescan (coalesced: a scan already waiting covers this one)."""
        if not any(action is None for action, _, _ in self._jobs):
            self._enqueue(None)

    def open_file(self, path: str) -> None:
        """Add a GGUF the user picked (it stays where it is) and offer it in the picker."""
        self._enqueue(lambda library: library.add_file(Path(path)), self.opened.emit, edited=True)

    def add_file(self, path: str) -> None:
        self._enqueue(lambda library: library.add_file(Path(path)), edited=True)

    def add_folder(self, path: str) -> None:
        self._enqueue(lambda library: library.add_folder(Path(path)), edited=True)

    def forget_folder(self, path: str) -> None:
        self._enqueue(lambda library: library.forget_folder(Path(path)), edited=True)

    def folders(self) -> list[str]:
        """The folders the library scans besides Ember's own (the Settings page lists them)."""
        return [str(p) for p in model_folders(self.services.paths)]

    def remove(self, entry: LibraryEntry) -> None:
        """Forget a model; only Ember's own downloads are deleted from disk."""
        self._enqueue(lambda library: library.remove(entry, entry.source == "hub"), edited=True)

    def downloaded(self) -> None:
        """A download finished: scan, and tell the others the library changed."""
        self._enqueue(None, edited=True)

    def _enqueue(self, action: LibraryAction | None, done: Callable | None = None, edited: bool = False) -> None:
        self._jobs.append((action, done, edited))
        self._next()

    def _next(self) -> None:
        if self._running or not self._jobs:
            return
        action, done, edited = self._jobs.popleft()
        self._running = True
        worker = Worker(self._job, action, name="library")

        def finished(value) -> None:
            result, entries = value
            self.model.set_entries(entries)
            self.library_changed.emit(entries)
            if done is not None:
                done(result)
            if edited:
                self.notices.publish(Changes(library=True, source=self))

        worker.result.connect(finished)
        worker.error.connect(self.failed)
        worker.finished.connect(self._job_finished)
        self.runner.start(worker)

    def _job_finished(self) -> None:
        self._running = False
        self._next()

    def _job(self, action: LibraryAction | None):
        """On the worker: the action (if any), then a scan, on the worker's own connection."""
        conn = self.services.connect()
        try:
            library = self.services.library(conn)
            result = action(library) if action is not None else None
            return result, library.scan()
        finally:
            conn.close()

    # --- hashing ------------------------------------------------------------------------------
    def hash(self, path: str) -> None:
        """Compute a model's SHA-256 once (a long job) and keep it in the library; replies made with
        the file get it from there (the database derives it)."""
        entry = self.entry(path)
        if entry is None or entry.sha256:
            return
        cancel = CancelToken()
        worker = Worker(self._hash_job, entry, cancel, cancel=cancel, name="hash-model")
        worker.progress.connect(self.progress)
        worker.result.connect(lambda digest: self._on_hashed(path, digest))
        self.runner.start(worker, long=True)

    def _hash_job(self, entry: LibraryEntry, cancel: CancelToken):
        conn = self.services.connect()
        try:
            return (yield from self.services.library(conn).compute_sha256(entry, cancel))
        finally:
            conn.close()

    def _on_hashed(self, path: str, digest: str | None) -> None:
        if not digest:
            return
        entry = self.entry(path)
        if entry is not None:
            self.model.update_row(replace(entry, sha256=digest))
        self.services.hosts.hashed(path, digest)
        self.hashed.emit(path, digest)
        self.progress.emit(Progress(1, 1, "", "Model file checked (SHA-256 recorded)."))
        self.notices.publish(Changes(library=True, source=self))
