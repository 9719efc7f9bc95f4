"""The Models page's controller: Hub search and detail, fit estimates, the download queue.

Every Hub call and every download runs on a worker; each download has its own thread. The queue's
sidecar files are its state, so downloads left unfinished by a crash resume when the window opens.
The library itself belongs to the library controller: a finished download asks it to rescan, and
its change notice refits the files shown here (a file downloaded before is fitted from its header).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.changes import ChangeNotice, Changes
from app.controllers.library_controller import LibraryController
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.errors import EmberError
from engine.gguf.inspect import ModelInfo
from engine.hub.client import current_endpoint
from engine.hub.download import DownloadOptions
from engine.hub.files import GgufFile
from engine.hub.queue import DownloadQueue, QueueItem
from engine.hub.search import repo_detail, search_models
from engine.jobs import Progress
from engine.library.library import info_from_row
from engine.runtime.bandwidth import memory_bandwidth
from engine.runtime.fit import FitEstimate, estimate_fit, speed_calibration
from engine.runtime.hardware import probe_hardware
from engine.store.models_repo import ModelRepository


@dataclass(frozen=True)
class FileChoice:
    """A file of the shown repo with what it would mean on this machine."""

    file: GgufFile
    fit: FitEstimate | None


@dataclass(frozen=True)
class DownloadRow:
    item: QueueItem
    progress: Progress | None = None


def _machine(paths):
    """This machine now (free memory changes) and its memory bandwidth (measured once, then cached)."""
    return probe_hardware(check_offload=True), memory_bandwidth(paths)


class ModelsController(QObject):
    results_ready = Signal(object)  # list[ModelSummary]
    detail_ready = Signal(object, object)  # RepoDetail, list[FileChoice]
    downloads_changed = Signal(object)  # list[DownloadRow]
    download_progress = Signal(object)  # DownloadRow
    busy = Signal(str)  # what is being fetched ("" when idle)
    error = Signal(object)  # EmberError
    notice = Signal(str)

    def __init__(self, services: Services, runner: WorkerRunner, library: LibraryController, notices: ChangeNotice,
                 parent=None, options: DownloadOptions | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.runner = runner
        self.library = library
        self._context_length = 4096
        notices.changed.connect(self._on_changes)
        self.endpoint = current_endpoint()
        self.queue = DownloadQueue(services.paths, self.endpoint, options=options)
        self._hardware = None  # as last probed for a fit
        self._detail = None
        self._workers: dict[str, Worker] = {}
        self._latest: dict[str, Worker] = {}  # the newest search and detail asked for

    # --- search and detail --------------------------------------------------------------------
    def search(self, query: str, sort: str = "downloads") -> None:
        self.busy.emit(f"Searching for “{query}”…" if query else "Most downloaded GGUF models…")
        worker = Worker(search_models, query, endpoint=self.endpoint, sort=sort, limit=40)
        worker.finished.connect(lambda: self.busy.emit(""))
        self._start_latest("search", worker, self.results_ready.emit)

    def show_repo(self, repo_id: str, context_length: int) -> None:
        self._context_length = context_length
        self.busy.emit(f"Opening {repo_id}…")
        worker = Worker(self._detail_job, repo_id, context_length)
        worker.finished.connect(lambda: self.busy.emit(""))
        self._start_latest("detail", worker, self._on_detail)

    def refit(self, context_length: int) -> None:
        """Recompute the fit of the shown files for another context length (no new Hub request)."""
        self._context_length = context_length
        if self._detail is not None:
            worker = Worker(self._detail_job, self._detail.summary.repo_id, context_length, self._detail)
            self._start_latest("detail", worker, self._on_detail)

    def _start_latest(self, kind: str, worker: Worker, deliver) -> None:
        """Run a search or detail job; its answer is delivered only if no newer one of its kind was
        asked for since (typing fast, or clicking through results, must not show an older answer)."""
        self._latest[kind] = worker

        def delivered(value) -> None:
            if self._latest.get(kind) is worker:
                deliver(value)

        worker.result.connect(delivered)
        worker.error.connect(self.error)
        self.runner.start(worker)

    def _detail_job(self, repo_id: str, context_length: int, detail=None):
        if detail is None:
            detail = repo_detail(repo_id, endpoint=self.endpoint)
        hw, bandwidth = _machine(self.services.paths)
        self._hardware = hw
        calibration = speed_calibration(self.services.paths, hw.backend)
        choices = []
        conn = self.services.connect()
        try:
            models = ModelRepository(conn)
            for file in detail.files:
                info, measured = self._local_model(models, repo_id, file)
                try:
                    fit = estimate_fit(hw, context_length, file_size=file.size, quantization=file.quantization,
                                       info=info, bandwidth=bandwidth, calibration=calibration,
                                       measured_tps=measured)
                except (EmberError, ValueError):
                    fit = None
                choices.append(FileChoice(file, fit))
        finally:
            conn.close()
        return detail, choices

    def _local_model(self, models: ModelRepository, repo_id: str, file: GgufFile) -> tuple[ModelInfo | None, float | None]:
        """What this machine knows of a file it downloaded before: its header (exact layers and KV
        cache, for a one-part file) and the tokens/s seen in chat with it."""
        try:
            dest = self.services.paths.model_destination(repo_id, file.parts[0].path)
        except EmberError:
            return None, None
        row = models.get(str(dest))
        if row is None:
            return None, None
        return (info_from_row(row) if len(file.parts) == 1 else None), row.measured_tps

    @property
    def machine_summary(self) -> str:
        return self._hardware.summary if self._hardware else "not probed yet"

    def _on_detail(self, value) -> None:
        self._detail, choices = value
        self.detail_ready.emit(self._detail, choices)

    # --- downloads ----------------------------------------------------------------------------
    def download(self, choice: FileChoice) -> None:
        repo_id = self._detail.summary.repo_id if self._detail else None
        if repo_id is None:
            return
        try:
            for part in choice.file.parts:
                item = self.queue.enqueue(repo_id, part.path, sha256=part.sha256, size=part.size)
                self._start(item.key)
        except EmberError as error:
            self.error.emit(error)
        self.refresh_downloads()

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
        running = self._workers.get(key)
        if running is not None and not running.done.is_set():
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
        worker.result.connect(lambda path: self._on_downloaded(path))
        worker.error.connect(self.error)
        worker.finished.connect(lambda key=key, worker=worker: self._on_download_finished(key, worker))
        self._workers[key] = worker
        self.runner.start(worker, long=True)

    def _on_downloaded(self, path) -> None:
        if path:
            self.notice.emit(f"{Path(path).name} is downloaded and verified.")
            self.library.downloaded()

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

    def _on_changes(self, changes: Changes) -> None:
        """The library changed (a download, a deletion, a hash): the shown files' fit may change with it."""
        if changes.library:
            self.refit(self._context_length)
