"""The download queue of one window: every page that downloads a file (Models, Documents' embedding
model) goes through it, so the Models page's Downloads tab lists them all and one owner resumes them.

Each download has its own thread. The queue's sidecar files are its state, so downloads left
unfinished by a crash resume when the window opens (`resume_unfinished`), and those cut off by
closing it are marked to continue at the next start (`requeue_interrupted`). A verified file asks the
library controller to rescan, and is announced with `downloaded(path)`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.controllers.library_controller import LibraryController
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.errors import EmberError
from engine.hub.client import current_endpoint
from engine.hub.download import DownloadOptions
from engine.hub.queue import DownloadQueue, QueueItem
from engine.jobs import Progress


@dataclass(frozen=True)
class DownloadRow:
    item: QueueItem
    progress: Progress | None = None


@dataclass(frozen=True)
class FilePart:
    """One file to download: its path in the repo and what the Hub says of it (None: unknown yet)."""

    path: str
    sha256: str | None = None
    size: int | None = None


class DownloadsController(QObject):
    downloads_changed = Signal(object)  # list[DownloadRow]
    download_progress = Signal(object)  # DownloadRow
    downloaded = Signal(str)  # the path of a file that arrived and was verified
    error = Signal(object)  # EmberError
    notice = Signal(str)

    def __init__(self, services: Services, runner: WorkerRunner, library: LibraryController, parent=None,
                 options: DownloadOptions | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.library = library
        self.endpoint = current_endpoint()
        self.queue = DownloadQueue(services.paths, self.endpoint, options=options)
        self._workers: dict[str, Worker] = {}

    def download(self, repo_id: str, parts: list[FilePart]) -> list[str]:
        """Queue and start the parts of one model file; returns their queue keys."""
        keys = []
        try:
            for part in parts:
                item = self.queue.enqueue(repo_id, part.path, sha256=part.sha256, size=part.size)
                keys.append(item.key)
                self._start(item.key)
        except EmberError as error:
            self.error.emit(error)
        self.refresh_downloads()
        return keys

    def running(self, key: str) -> bool:
        worker = self._workers.get(key)
        return worker is not None and not worker.done.is_set()

    def resume_unfinished(self) -> None:
        """At start: continue what a closed or killed Ember left downloading."""
        for item in self.queue.to_resume():
            self._start(item.key)
        self.refresh_downloads()

    def resume(self, key: str) -> None:
        try:
            self.queue.resume(key)  # paused or failed → queued; the part on disk is kept
        except EmberError as error:
            self.error.emit(error)
            return
        self._start(key)
        self.refresh_downloads()

    def pause(self, key: str) -> None:
        self.queue.pause(key)
        self.refresh_downloads()

    def remove(self, key: str) -> None:
        self.queue.remove(key)
        self.refresh_downloads()

    def _start(self, key: str) -> None:
        if self.running(key):
            return  # (a worker that has ended but whose `finished` is still queued may be replaced)
        try:
            item = replace(self.queue.get(key), state="downloading", running=True)
        except EmberError as error:
            self.error.emit(error)
            return
        worker = Worker(self.queue.run, key)
        worker.kwargs["cancel"] = worker.cancel  # pausing, or closing the window, stops it (the part is kept)
        # progress rows are made from this item, without reading the queue's files on the UI thread
        worker.progress.connect(lambda p, item=item: self.download_progress.emit(
            DownloadRow(replace(item, done=int(p.done), size=int(p.total or item.size or 0) or None), p)))
        worker.result.connect(self._on_downloaded)
        worker.error.connect(self.error)
        worker.finished.connect(lambda key=key, worker=worker: self._on_download_finished(key, worker))
        self._workers[key] = worker
        self.runner.start(worker, long=True)

    def _on_downloaded(self, path) -> None:
        if path:
            self.notice.emit(f"{Path(path).name} is downloaded and verified.")
            self.library.downloaded()
            self.downloaded.emit(str(path))

    def _on_download_finished(self, key: str, worker: Worker) -> None:
        if self._workers.get(key) is worker:
            del self._workers[key]
        self.refresh_downloads()

    def refresh_downloads(self) -> None:
        self.downloads_changed.emit([DownloadRow(item) for item in self.queue.items()])

    def requeue_interrupted(self) -> None:
        """After the window's jobs were stopped (it is closing): the downloads that were running were
        saved as paused; mark them queued so that the next start continues them (`resume_unfinished`)."""
        for key in list(self._workers):
            try:
                self.queue.resume(key)
            except EmberError:
                pass  # removed meanwhile
