"""The chat model: the library listing, opening a GGUF, load/unload (a runtime host process), hashing.

Everything slow runs in a worker: scanning and inspecting files, starting the host (a generator of
Progress), stopping it, hashing the file once (the digest is kept in the library, so it is computed
once per file), and probing the hardware for the status bar.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.services import LoadedModel, Services
from app.workers import Worker, WorkerRunner
from engine.chat.conversation import ModelIdentity
from engine.errors import EmberError
from engine.jobs import CancelToken, Progress
from engine.library.library import LibraryEntry
from engine.runtime.supervisor import HostSettings, RuntimeHost
from engine.store.models_repo import ModelRepository


def scan_library(services: Services, action: str | None = None, *args) -> list[LibraryEntry]:
    """The scanned library, on a worker's own connection; first `action` (a Library method's name,
    e.g. "add_folder") with `args`, when given."""
    conn = services.connect()
    try:
        library = services.library(conn)
        if action is not None:
            getattr(library, action)(*args)
        return library.scan()
    finally:
        conn.close()


def add_model_file(services: Services, path: str) -> LibraryEntry:
    conn = services.connect()
    try:
        return services.library(conn).add_file(Path(path))
    finally:
        conn.close()


def probe_backend():
    from engine.runtime.hardware import probe_hardware  # lazily: it may run nvidia-smi

    return probe_hardware(check_offload=False)


def hash_model(path: str, cancel: CancelToken):
    from engine.library.hashing import sha256_file

    digest = yield from sha256_file(Path(path), cancel)
    return path, digest


class ModelController(QObject):
    library_changed = Signal(list)  # list[LibraryEntry]
    opened = Signal(object)  # LibraryEntry the user just opened
    loading = Signal(object)  # the LibraryEntry being loaded
    progress = Signal(object)  # Progress (loading or hashing)
    loaded = Signal(object)  # RuntimeHost
    unloaded = Signal()
    failed = Signal(object)  # EmberError
    hardware_known = Signal(object)  # HardwareInfo
    identity_changed = Signal(object)  # ModelIdentity, when the SHA-256 becomes known

    def __init__(self, services: Services, runner: WorkerRunner, parent=None) -> None:
        super().__init__(parent)
        self.services = services
        self.runner = runner
        self.entries: list[LibraryEntry] = []
        self.hardware = None
        self.threads: int | None = None  # None: cores - 1 (tests and benchmarks set it)
        self._load_worker: Worker | None = None

    @property
    def busy(self) -> bool:
        return self._load_worker is not None

    # --- the library --------------------------------------------------------------------------
    def scan(self) -> None:
        self.runner.run(scan_library, self.services, name="scan-library", on_result=self._on_scanned,
                        on_error=self.failed)

    def _on_scanned(self, entries: list[LibraryEntry]) -> None:
        self.entries = entries
        self.library_changed.emit(entries)

    def open_file(self, path: str) -> None:
        """Add a GGUF the user picked (it stays where it is) and offer it in the picker."""
        def added(entry: LibraryEntry) -> None:
            self.entries = [e for e in self.entries if e.path != entry.path] + [entry]
            self.library_changed.emit(self.entries)
            self.opened.emit(entry)

        self.runner.run(add_model_file, self.services, str(path), name="open-model", on_result=added,
                        on_error=self.failed)

    def probe_hardware(self) -> None:
        def known(info) -> None:
            self.hardware = info
            self.hardware_known.emit(info)

        self.runner.run(probe_backend, name="probe-hardware", on_result=known)

    # --- load / unload ------------------------------------------------------------------------
    def load(self, entry: LibraryEntry, context_length: int = 4096, gpu_layers: int | str = "auto",
             threads: int | None = None) -> None:
        if self.busy:
            return
        self.unload()
        settings = HostSettings(model_path=entry.path, context_length=context_length, gpu_layers=gpu_layers,
                                threads=threads or self.threads)
        host = RuntimeHost(settings, log_dir=self.services.paths.logs)
        cancel = CancelToken()
        worker = Worker(host.start, cancel, cancel=cancel, name="load-model")
        worker.progress.connect(self.progress)
        worker.error.connect(self._on_failed)
        worker.result.connect(lambda _=None: self._on_started(host, entry))
        worker.finished.connect(self._on_load_finished)
        self._load_worker = worker
        self.loading.emit(entry)
        self.runner.start(worker, long=True)

    def cancel_load(self) -> None:
        if self._load_worker is not None:
            self._load_worker.cancel.cancel()

    def _on_load_finished(self) -> None:
        self._load_worker = None

    def _on_failed(self, error: EmberError) -> None:
        self.unloaded.emit()
        self.failed.emit(error)

    def _on_started(self, host: RuntimeHost, entry: LibraryEntry) -> None:
        if not host.alive:  # cancelled while loading (the worker already stopped it)
            self.unloaded.emit()
            return
        info = host.model_info
        self.services.model = LoadedModel(host, entry, ModelIdentity(
            entry.name, entry.sha256, info.quantization if info else None, host.info.get("template_hash")))
        self.loaded.emit(host)
        if entry.sha256 is None:
            self._hash(entry.path)

    def _hash(self, path: str) -> None:
        cancel = CancelToken()
        worker = Worker(hash_model, path, cancel, cancel=cancel, name="hash-model")
        worker.progress.connect(self.progress)
        worker.result.connect(self._on_hashed)
        self.runner.start(worker, long=True)

    def _on_hashed(self, value) -> None:
        path, digest = value
        if not digest:
            return
        ModelRepository(self.services.conn).set_sha256(path, digest)
        self.entries = [e if e.path != path else _with_sha(e, digest) for e in self.entries]
        model = self.services.model
        if model.entry is not None and model.entry.path == path and model.identity is not None:
            self.services.chats.fill_model_sha256(model.unhashed_replies, digest)
            model.unhashed_replies.clear()
            i = model.identity
            model.identity = ModelIdentity(i.name, digest, i.quantization, i.template_hash)
            model.entry = _with_sha(model.entry, digest)
            self.identity_changed.emit(model.identity)
        self.progress.emit(Progress(1, 1, "", "Model file checked (SHA-256 recorded)."))

    def unload(self) -> None:
        """Stop the model process (in a worker: it may take a moment to exit)."""
        host = self.services.model.host
        self.services.model = LoadedModel()
        if host is not None:
            self.runner.run(host.stop, name="stop-model", long=True)
            self.unloaded.emit()

    def host_lost(self) -> None:
        """The model process died (a crash, out of memory): forget it; the error was shown already."""
        if self.services.model.host is not None and not self.services.model.ready:
            self.unload()


def _with_sha(entry: LibraryEntry, digest: str) -> LibraryEntry:
    return replace(entry, sha256=digest)
