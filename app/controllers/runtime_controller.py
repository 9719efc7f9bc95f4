"""Loading and unloading models: the runtime host processes, by role, and the hardware they run on.

Starting a host is a generator of Progress on its own thread; stopping one runs on a worker (it may
take a moment to exit). A loaded model goes into the HostRegistry (services.hosts); its file is then
hashed once by the library controller, for provenance. The hardware is probed once, off the UI
thread, without loading llama.cpp into this process.

A model on a remote server (Settings, Remote servers) is "loaded" the same way: a RemoteHost in the
registry as the chat model, after the server confirmed it offers that model. The models the
servers offer are listed in `remote_models`, beside the library in the Chat page's picker.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.controllers.library_controller import LibraryController
from app.models.rows_table_model import Column, RowsTableModel
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.errors import EmberError
from engine.jobs import CancelToken
from engine.library.library import LibraryEntry
from engine.paths import EmberPaths
from engine.preferences import load_preferences
from engine.remote.endpoints import load_endpoints
from engine.remote.host import RemoteHost, RemoteModel, find_models
from engine.runtime.hardware import probe_hardware
from engine.runtime.registry import LoadedModel
from engine.runtime.supervisor import HostSettings, RuntimeHost


def local_host(paths: EmberPaths, entry: LibraryEntry, context_length: int | None = None,
               gpu_layers: int | str | None = None, threads: int | None = None) -> RuntimeHost:
    """A host for this model (not started); what is not given comes from the Settings page's choices."""
    prefs = load_preferences(paths)
    settings = HostSettings(model_path=entry.path, context_length=context_length or prefs.context_length,
                            gpu_layers=prefs.gpu_layers_value if gpu_layers is None else gpu_layers,
                            threads=threads or prefs.threads_value, flash_attention=prefs.flash_attention)
    return RuntimeHost(settings, log_dir=paths.logs)


class RuntimeController(QObject):
    loading = Signal(object)  # the LibraryEntry being loaded
    progress = Signal(object)  # Progress while loading
    loaded = Signal(object)  # LoadedModel
    unloaded = Signal()
    failed = Signal(object)  # EmberError
    hardware_known = Signal(object)  # HardwareInfo
    identity_changed = Signal(object)  # LoadedModel, when its SHA-256 became known
    remote_problems = Signal(list)  # a line per remote server that could not be asked for its models

    def __init__(self, services: Services, runner: WorkerRunner, library: LibraryController, parent=None) -> None:
        super().__init__(parent)
        self.services, self.runner, self.library = services, runner, library
        self.hardware = None
        self.threads: int | None = None  # None: cores - 1 (tests and benchmarks set it)
        self._load_worker: Worker | None = None
        library.hashed.connect(self._on_hashed)
        self.remote_models = RowsTableModel(  # the remote servers' models, for the model picker
            [Column("Model", lambda m: f"{m.model} — {m.endpoint.name} (remote)", tooltip=lambda m: m.endpoint.url)],
            key=lambda m: m.path, parent=self)

    @property
    def busy(self) -> bool:
        return self._load_worker is not None

    @property
    def chat_model(self) -> LoadedModel | None:
        return self.services.chat_model

    def probe_hardware(self) -> None:
        def known(info) -> None:
            self.hardware = info
            self.hardware_known.emit(info)

        self.runner.run(probe_hardware, False, name="probe-hardware", on_result=known)

    # --- load / unload the chat model ---------------------------------------------------------
    def refresh_remote(self) -> None:
        """Ask each remote server the user added for its models (on a worker: a server may be slow)."""
        def found(value) -> None:
            models, problems = value
            self.remote_models.set_rows(models)
            if problems:
                self.remote_problems.emit(problems)

        self.runner.run(lambda: find_models(load_endpoints(self.services.paths)), name="remote-models",
                        on_result=found)

    def load_remote(self, choice: RemoteModel, context_length: int | None = None) -> None:
        """Use a remote server's model as the chat model (it is checked to be there first)."""
        if self.busy:
            return
        self.unload()
        host = RemoteHost(choice.endpoint, choice.model,
                          context_length or load_preferences(self.services.paths).context_length)
        self._start(host, choice, "load-remote-model")

    def load(self, entry: LibraryEntry, context_length: int | None = None, gpu_layers: int | str | None = None,
             threads: int | None = None) -> None:
        """Start a host for this model; what is not given comes from the Settings page's choices."""
        if self.busy:
            return
        self.unload()
        host = local_host(self.services.paths, entry, context_length, gpu_layers, threads or self.threads)
        self._start(host, entry, "load-model")

    def _start(self, host: RuntimeHost | RemoteHost, entry: LibraryEntry | RemoteModel, name: str) -> None:
        """Start a host (local or remote) on its own thread; `_on_started` puts it in the registry."""
        cancel = CancelToken()
        worker = Worker(host.start, cancel, cancel=cancel, name=name)
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

    def _on_started(self, host: RuntimeHost | RemoteHost, entry: LibraryEntry | RemoteModel) -> None:
        if not host.alive:  # cancelled while loading (the worker already stopped it)
            self.unloaded.emit()
            return
        loaded = LoadedModel("chat", host, entry.path, entry.sha256)
        previous = self.services.hosts.put(loaded)
        if previous is not None and previous.host is not host:
            self.runner.run(previous.host.stop, name="stop-model", long=True)
        self.loaded.emit(loaded)
        if entry.sha256 is None and not isinstance(host, RemoteHost):
            self.library.hash(entry.path)

    def _on_hashed(self, path: str, _digest: str) -> None:
        loaded = self.services.hosts.get("chat")
        if loaded is not None and loaded.path == path:
            self.identity_changed.emit(loaded)

    def unload(self) -> None:
        """Stop the chat model's process (in a worker)."""
        loaded = self.services.hosts.take("chat")
        if loaded is not None:
            self.runner.run(loaded.host.stop, name="stop-model", long=True)
            self.unloaded.emit()

    def host_lost(self) -> None:
        """The model process died (a crash, out of memory): forget it; the error was shown already."""
        loaded = self.services.hosts.get("chat")
        if loaded is not None and not loaded.ready:
            self.unload()

    def stop_all(self) -> None:
        """The window closes: stop every model process now."""
        self.cancel_load()
        self.services.hosts.stop_all()
