"""Start the window: logging and crash logs, one owner per home, recovery, services, the window."""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import sys
import threading

from engine.errors import EmberError
from engine.paths import EmberPaths
from engine.store.lock import HomeLock

log = logging.getLogger("ember")


def setup_logging(paths: EmberPaths, debug: bool):
    handler = logging.handlers.RotatingFileHandler(paths.logs / "ember.log", maxBytes=2_000_000, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)

    def log_uncaught(exc_type, exc, tb):
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = log_uncaught  # also catches exceptions raised in Qt slots
    threading.excepthook = lambda args: log.critical("uncaught exception in thread %s", args.thread,
                                                     exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
    crash_log = open(paths.logs / "crash.log", "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
    faulthandler.enable(crash_log)
    return crash_log


def run_window(debug: bool = False) -> int:
    paths = EmberPaths.from_env().ensure()
    lock = HomeLock(paths.lock)
    try:
        lock.acquire("the Ember window")
    except EmberError as error:
        sys.stderr.write(f"ember: {error.message}\nhint: {error.hint}\n")
        return 1
    crash_log = setup_logging(paths, debug)
    try:
        from PySide6.QtWidgets import QApplication

        from app.services import Services
        from app.views.main_window import MainWindow

        app = QApplication.instance() or QApplication(sys.argv[:1])
        app.setApplicationName("Ember")
        app.setStyle("Fusion")  # follows the system's light/dark palette on every platform
        services = Services(paths)
        recovered = services.chats.recover_streaming()
        if recovered:
            log.info("marked %d reply(ies) left streaming by a crash as interrupted", recovered)
        window = MainWindow(services)
        window.show()
        code = app.exec()
        services.close()
        return code
    finally:
        lock.release()
        crash_log.close()
