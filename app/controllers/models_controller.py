"""The Models page's controller: Hub search and detail, fit estimates; downloads go to the window's queue.

Every Hub call runs on a worker. Downloads belong to the window's DownloadsController (the Documents
page downloads its embedding model through it too); a finished one makes the library controller
rescan, and its change notice refits the files shown here (a file downloaded before is fitted from
its header).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from app.changes import ChangeNotice, Changes
from app.controllers.downloads_controller import DownloadsController, FilePart
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.errors import EmberError
from engine.gguf.inspect import ModelInfo
from engine.hub.files import GgufFile
from engine.hub.search import repo_detail, search_models
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


def _machine(paths):
    """This machine now (free memory changes) and its memory bandwidth (measured once, then cached)."""
    return probe_hardware(check_offload=True), memory_bandwidth(paths)


class ModelsController(QObject):
    results_ready = Signal(object)  # list[ModelSummary]
    detail_ready = Signal(object, object)  # RepoDetail, list[FileChoice]
    busy = Signal(str)  # what is being fetched ("" when idle)
    error = Signal(object)  # EmberError
    notice = Signal(str)

    def __init__(self, services: Services, runner: WorkerRunner, downloads: DownloadsController,
                 notices: ChangeNotice, parent=None) -> None:
        super().__init__(parent)
        self.services = services
        self.runner = runner
        self.downloads = downloads
        self._context_length = 4096
        notices.changed.connect(self._on_changes)
        self.endpoint = downloads.endpoint
        self._hardware = None  # as last probed for a fit
        self._detail = None
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
        """The chosen file (every part of a split one) goes to the window's download queue."""
        if self._detail is not None:
            self.downloads.download(self._detail.summary.repo_id,
                                    [FilePart(p.path, p.sha256, p.size) for p in choice.file.parts])

    def _on_changes(self, changes: Changes) -> None:
        """The library changed (a download, a deletion, a hash): the shown files' fit may change with it."""
        if changes.library:
            self.refit(self._context_length)
