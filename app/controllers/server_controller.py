"""The Server panel's controller: Ember's local API server (engine/server/gateway.py) switched on and
off, its port, the network choice and the API key (kept in settings.json), and what it served.

The gateway answers on its own threads from the models the window has loaded (the registry), so
the Chat page is never disturbed by it; its records and queue reach the panel as queued signals.
By default it serves the Chat page's model; the panel can load another model for the server alone
(its own process, the "served" role), and switch it or go back, without touching the Chat page.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from app.controllers.runtime_controller import local_host
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.config import load_settings, update_settings
from engine.errors import InvalidInput
from engine.jobs import CancelToken
from engine.library.library import LibraryEntry
from engine.runtime.registry import LoadedModel
from engine.runtime.supervisor import RuntimeHost
from engine.server.gateway import NETWORK_ADDRESS, Gateway, GatewaySettings, new_api_key

SETTINGS_KEY = "server"
DEFAULT_PORT = 8080
KEEP_RECORDS = 500


class ServerController(QObject):
    state_changed = Signal()  # running or not, the address, the settings
    request_recorded = Signal(object)  # RequestRecord (from a gateway thread, queued to the UI thread)
    queue_changed = Signal(object)  # {"chat": (busy, [clients waiting]), "embedding": ...}
    error = Signal(object)  # EmberError
    served_changed = Signal()  # the server's own model was loaded, is loading, or was put away

    def __init__(self, services: Services, runner: WorkerRunner, parent=None) -> None:
        super().__init__(parent)
        self.services, self.runner = services, runner
        self.gateway: Gateway | None = None
        self.loading_path: str | None = None  # the model being loaded for the server
        self.records: list = []
        self.settings = self._load()
        self.request_recorded.connect(self._keep)

    # --- settings ---------------------------------------------------------------------------------
    def _load(self) -> GatewaySettings:
        saved = load_settings(self.services.paths.settings).get(SETTINGS_KEY, {}, kind=dict)
        key = saved.get("api_key")
        port = saved.get("port")
        settings = GatewaySettings(
            port=port if isinstance(port, int) and 1 <= port <= 65535 else DEFAULT_PORT,
            api_key=key if isinstance(key, str) and len(key) >= 16 else new_api_key(),
            address=NETWORK_ADDRESS if saved.get("network") is True else "127.0.0.1")
        if key != settings.api_key:  # made now: kept, so the programs set up with it go on working
            self._save(settings, enabled=bool(saved.get("enabled")))
        return settings

    def _save(self, settings: GatewaySettings, *, enabled: bool) -> None:
        value = {"port": settings.port, "network": settings.network, "api_key": settings.api_key,
                 "enabled": enabled}
        update_settings(self.services.paths.settings, lambda s: s.set(SETTINGS_KEY, value))

    @property
    def was_on(self) -> bool:
        """The server was on when Ember last closed (it starts again with the window)."""
        return bool(load_settings(self.services.paths.settings).get(SETTINGS_KEY, {}, kind=dict).get("enabled"))

    def change(self, *, port: int | None = None, network: bool | None = None, new_key: bool = False) -> None:
        """New settings; a running server restarts on them (requests under way finish first)."""
        settings = self.settings
        if port is not None:
            settings = replace(settings, port=port)
        if network is not None:
            settings = replace(settings, address=NETWORK_ADDRESS if network else "127.0.0.1")
        if new_key:
            settings = replace(settings, api_key=new_api_key())
        try:
            settings = settings.checked()
        except InvalidInput as error:
            self.error.emit(error)
            return
        self.settings = settings
        self._save(settings, enabled=self.running)
        if self.running:
            self.stop(remember=False)
            self.start()
        else:
            self.state_changed.emit()

    # --- on and off ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.gateway is not None and self.gateway.running

    def start(self) -> bool:
        if self.running:
            return True
        gateway = Gateway(self.services.hosts, self.settings, on_request=self.request_recorded.emit,
                          on_queue=self.queue_changed.emit)
        try:
            gateway.start()
        except OSError as exc:
            self.error.emit(InvalidInput(f"Port {self.settings.port} cannot be used: {exc.strerror or exc}.",
                                         "Another program may be using it: pick another port."))
            self.state_changed.emit()
            return False
        self.gateway = gateway
        self._save(self.settings, enabled=True)
        self.state_changed.emit()
        return True

    def stop(self, *, remember: bool = True) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if remember:
            self._save(self.settings, enabled=False)
        self.state_changed.emit()

    def window_closed(self) -> None:
        """The window closes: stop serving, but remember it was on for the next start."""
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    # --- the server's own model ------------------------------------------------------------------------
    @property
    def own_model(self) -> LoadedModel | None:
        """The model loaded for the server alone, if any (else it serves the Chat page's)."""
        return self.services.hosts.get("served")

    def serve_model(self, entry: LibraryEntry) -> None:
        """Load `entry` in a process of its own for the server; the one it replaces stops once it is up."""
        if self.loading_path is not None:
            return
        host = local_host(self.services.paths, entry)
        cancel = CancelToken()
        worker = Worker(host.start, cancel, cancel=cancel, name="load-served-model")
        worker.result.connect(lambda _=None: self._served(host, entry))
        worker.error.connect(self.error)
        worker.finished.connect(self._loading_ended)
        self.loading_path = entry.path
        self.served_changed.emit()
        self.runner.start(worker, long=True)

    def _served(self, host: RuntimeHost, entry: LibraryEntry) -> None:
        if not host.alive:
            return
        previous = self.services.hosts.put(LoadedModel("served", host, entry.path, entry.sha256))
        if previous is not None:
            self.runner.run(previous.host.stop, name="stop-served-model", long=True)

    def _loading_ended(self) -> None:
        self.loading_path = None
        self.served_changed.emit()

    def serve_chat_model(self) -> None:
        """Go back to serving the Chat page's model: the server's own process stops."""
        loaded = self.services.hosts.take("served")
        if loaded is not None:
            self.runner.run(loaded.host.stop, name="stop-served-model", long=True)
        self.served_changed.emit()

    # --- what it serves -------------------------------------------------------------------------------
    def base_url(self) -> str:
        shown = "127.0.0.1" if not self.settings.network else "<this computer's address>"
        port = self.gateway.port if self.gateway else self.settings.port
        return f"http://{shown}:{port}/v1"

    def models(self) -> list[dict]:
        if self.gateway is not None:
            return self.gateway.models()
        return Gateway(self.services.hosts, self.settings).models()  # what it would serve

    def _keep(self, record) -> None:
        self.records.append(record)
        del self.records[:-KEEP_RECORDS]
