"""The first start's welcome: what this machine can run, a model for it, the models other apps keep
here, and whether the Hub can be reached. Each question runs on a worker and answers with a signal,
so the window paints first and the welcome fills in as the answers come.

The welcome shows while the user has no chat and has not dismissed it; using any of its offers, or
"Skip", dismisses it for good (settings.json, `welcome_done`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.controllers.downloads_controller import DownloadsController, FilePart
from app.controllers.library_controller import LibraryController
from app.controllers.runtime_controller import RuntimeController
from app.services import Services
from app.workers import WorkerRunner
from engine.config import load_settings, update_settings
from engine.hub.client import current_endpoint
from engine.library import first_run
from engine.paths import starter_model
from engine.runtime.bandwidth import memory_bandwidth
from engine.runtime.fit import estimate_fit

DONE_KEY = "welcome_done"


class WelcomeController(QObject):
    recommended = Signal(object)  # first_run.Recommendation or None
    starter_speed = Signal(object)  # FitEstimate of the bundled starter model, or None
    found = Signal(list)  # list[first_run.FoundModels]
    online = Signal(bool)  # the Hub answered
    dismissed = Signal()

    def __init__(self, services: Services, runner: WorkerRunner, runtime: RuntimeController,
                 library: LibraryController, downloads: DownloadsController, parent=None) -> None:
        super().__init__(parent)
        self.services, self.runner, self.runtime = services, runner, runtime
        self.library, self.downloads = library, downloads
        self.home = Path.home()  # where other apps keep their models (tests point it elsewhere)
        self.hardware = None

    def wanted(self) -> bool:
        """Show the welcome: it was never dismissed and there is no chat yet."""
        done = load_settings(self.services.paths.settings).get(DONE_KEY)
        return not done and not self.services.chats.list_sessions()

    def start(self) -> None:
        """Ask everything the welcome shows (each on a worker)."""
        if self.runtime.hardware is not None:
            self._known(self.runtime.hardware)
        else:
            self.runtime.hardware_known.connect(self._known)
        self.runner.run(first_run.other_apps_models, self.home, name="other-apps", on_result=self.found.emit)
        self.runner.run(first_run.hub_reachable, current_endpoint(), name="hub-reachable", on_result=self.online.emit)

    def _known(self, hardware) -> None:
        if self.hardware is not None:
            return
        self.hardware = hardware

        def estimates(cancel=None):
            bandwidth = memory_bandwidth(self.services.paths)
            starter = starter_model()
            starter_fit = estimate_fit(hardware, first_run.WELCOME_CONTEXT, file_size=starter.stat().st_size,
                                                 quantization="Q4_1", bandwidth=bandwidth) if starter else None
            return first_run.recommend(hardware, bandwidth), starter_fit

        def answered(value) -> None:
            pick, starter_fit = value
            self.recommended.emit(pick)
            self.starter_speed.emit(starter_fit)

        self.runner.run(estimates, name="welcome-estimates", long=True, on_result=answered)

    # --- what the user picks ------------------------------------------------------------------------
    def use_starter(self) -> None:
        path = starter_model()
        entry = self.library.entry(str(path)) if path else None
        if entry is not None:
            self.runtime.load(entry)
        self.dismiss()

    def download(self, pick: first_run.Recommendation) -> None:
        c = pick.candidate
        self.downloads.download(c.repo_id, [FilePart(c.filename, None, None)])
        self.dismiss()

    def add_found(self, found: first_run.FoundModels) -> None:
        if found.add_folder:
            self.library.add_folder(str(found.folder))
        else:
            for path in found.files:
                self.library.add_file(str(path))
        self.dismiss()

    def dismiss(self) -> None:
        update_settings(self.services.paths.settings, lambda s: s.set(DONE_KEY, True))
        self.dismissed.emit()
