"""Loads and unloads the chat model (a runtime host process) off the UI thread, then hashes it once."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.services import Services
from app.workers import Worker, WorkerPools
from engine.chat.conversation import ModelIdentity
from engine.errors import EmberError
from engine.hub.hashing import sha256_file
from engine.hub.library import LibraryEntry
from engine.runtime.supervisor import HostSettings, RuntimeHost
from engine.store.models_repo import ModelRepository


class ModelController(QObject):
    loading = Signal(str)
    progress = Signal(object)  # engine.jobs.Progress
    loaded = Signal(object)  # RuntimeHost
    unloaded = Signal()
    failed = Signal(object)  # EmberError
    identity_changed = Signal(object)  # ModelIdentity (when the SHA-256 is known)

    def __init__(self, services: Services, pools: WorkerPools, parent=None) -> None:
        super().__init__(parent)
        self.services = services
        self.pools = pools
        self._load_worker: Worker | None = None

    @property
    def busy(self) -> bool:
        return self._load_worker is not None

    def load(self, entry: LibraryEntry, context_length: int = 4096, gpu_layers: int | str = "auto",
             threads: int | None = None) -> None:
        self.unload()
        settings = HostSettings(model_path=entry.path, context_length=context_length, gpu_layers=gpu_layers,
                                threads=threads)
        host = RuntimeHost(settings, log_dir=self.services.paths.logs)
        worker = Worker(host.start)
        worker.kwargs["cancel"] = worker.cancel
        worker.signals.progress.connect(self.progress)
        worker.signals.error.connect(self._on_failed)
        worker.signals.result.connect(lambda _=None: self._on_loaded(host, entry))
        worker.signals.finished.connect(self._on_finished)
        self._load_worker = worker
        self.loading.emit(entry.name)
        self.pools.start(worker, long=True)

    def cancel_load(self) -> None:
        if self._load_worker is not None:
            self._load_worker.cancel.cancel()

    def _on_finished(self) -> None:
        self._load_worker = None

    def _on_failed(self, error: EmberError) -> None:
        self.failed.emit(error)

    def _on_loaded(self, host: RuntimeHost, entry: LibraryEntry) -> None:
        if not host.alive:  # cancelled while loading
            self.unloaded.emit()
            return
        info = host.model_info
        model = self.services.model
        model.host, model.entry = host, entry
        model.identity = ModelIdentity(entry.name, entry.sha256, info.quantization if info else None,
                                       host.info.get("template_hash"))
        self.loaded.emit(host)
        if entry.sha256 is None:
            self._hash(entry)

    def _hash(self, entry: LibraryEntry) -> None:
        worker = Worker(self._hash_job, entry.path)
        worker.signals.result.connect(self._on_hashed)
        self.pools.start(worker, long=True)

    @staticmethod
    def _hash_job(path: str):
        digest = yield from sha256_file(Path(path))
        return path, digest

    def _on_hashed(self, value) -> None:
        path, digest = value
        if not digest:
            return
        ModelRepository(self.services.conn).set_sha256(path, digest)
        model = self.services.model
        if model.identity and model.entry and model.entry.path == path:
            i = model.identity
            model.identity = ModelIdentity(i.name, digest, i.quantization, i.template_hash)
            self.identity_changed.emit(model.identity)

    def unload(self) -> None:
        host = self.services.model.host
        self.services.model.host = None
        self.services.model.identity = None
        if host is not None:
            self.pools.start(Worker(host.stop))
            self.unloaded.emit()
