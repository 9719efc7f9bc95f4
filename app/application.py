"""Start the window: logging and crash logs, one owner per home, recovery, services, the window.

Start-up stays light: Qt, SQLite and the engine's small modules. llama.cpp runs in a child process,
GGUF inspection and the hardware probe load in workers after the window is painted.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import logging.handlers
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable

from engine.errors import EmberError
from engine.paths import EmberPaths
from engine.preferences import check_preferences, load_preferences
from engine.store.lock import HomeLock
from engine.store.recovery import backup_database, check_or_recover

STARTED_AT = time.perf_counter()
EXIT_AFTER_PAINT_ENV = "EMBER_EXIT_AFTER_FIRST_PAINT"  # diagnostics: print the paint time as JSON and quit

log = logging.getLogger("ember")


def setup_logging(paths: EmberPaths, debug: bool):
    """The app's rotating log, uncaught exceptions from any thread, and faulthandler's crash log."""
    handler = logging.handlers.RotatingFileHandler(paths.logs / "ember.log", maxBytes=2_000_000, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    if debug:
        root.addHandler(logging.StreamHandler(sys.stderr))

    def log_uncaught(exc_type, exc, tb) -> None:  # also what PySide6 calls for an exception in a slot
        if issubclass(exc_type, KeyboardInterrupt):
            return
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))

    def log_thread(args) -> None:
        log.critical("uncaught exception in thread %s", args.thread.name if args.thread else "?",
                     exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = log_uncaught
    threading.excepthook = log_thread
    crash_log = open(paths.logs / "crash.log", "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
    faulthandler.enable(crash_log)
    return crash_log


def open_home(paths: EmberPaths):
    """Take the home's lock, open the database, tidy what a crash or the last run left. -> (lock, services)."""
    from app.services import Services

    lock = HomeLock(paths.lock).acquire("the Ember window")
    try:
        recovery = check_or_recover(paths)  # a damaged ember.db is set aside and what can be read comes back
        settings_notes = check_preferences(paths)  # a settings file Ember cannot use is kept aside
        services = Services(paths)
        services.recovery = recovery
        services.settings_notes = settings_notes
        recovered = services.chats.recover_streaming()
        if recovered:
            log.info("marked %d reply(ies) left streaming by a crash as interrupted", recovered)
        purged = services.chats.purge_deleted()
        if purged:
            log.info("emptied %d chat(s) from the bin", purged)
    except BaseException:
        lock.release()
        raise
    return lock, services


def launched_from_desktop() -> bool:
    """A real screen and no terminal to read stderr: a refusal must also be said in a dialog."""
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc"):
        return False
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    return not (sys.stderr and sys.stderr.isatty())


def tell_in_a_dialog(error: EmberError) -> None:
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 - a dialog needs one
    QMessageBox.warning(None, "Ember", f"{error.message}\n\n{error.hint}")


def _report_first_paint(window, app) -> None:
    elapsed = time.perf_counter() - STARTED_AT
    log.info("first paint %.3f s after start-up began", elapsed)
    if os.environ.get(EXIT_AFTER_PAINT_ENV):
        heavy = sorted(m for m in ("llama_cpp", "jinja2", "gguf", "numpy", "torch", "engine.runtime.templates",
                                   "engine.runtime.host_main", "engine.runtime.routes", "engine.runtime.stream_server",
                                   "engine.runtime.generation") if m in sys.modules)
        print(json.dumps({"first_paint_time": time.time(), "since_import_s": elapsed, "heavy_modules": heavy}),
              flush=True)
        window.close()
        app.quit()


def run_window(debug: bool = False, on_window: Callable | None = None) -> int:
    """Open the window and run until it closes. `on_window(window)` runs once the window exists
    (for embedding Ember, and for tests that drive the real start-up in a separate process)."""
    try:
        paths = EmberPaths.from_env().ensure()
    except EmberError as error:  # no data folder to log in: say it on stderr and in a dialog
        sys.stderr.write(f"ember: {error.message}\n{error.hint}\n")
        if launched_from_desktop():
            tell_in_a_dialog(error)
        return 1
    crash_log = setup_logging(paths, debug)
    try:
        lock, services = open_home(paths)
    except EmberError as error:
        log.warning("not starting: %s", error.message)
        sys.stderr.write(f"ember: {error.message}\n{error.hint}\n")
        crash_log.close()
        if launched_from_desktop():
            tell_in_a_dialog(error)
        return 1
    clean_exit = False
    try:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication

        from app.views.icons import app_icon
        from app.views.main_window import MainWindow
        from app.views.theme import apply_theme

        app = QApplication.instance() or QApplication(sys.argv[:1])
        app.setApplicationName("Ember")
        app.setApplicationDisplayName("Ember")
        app.setDesktopFileName("ember")  # matches packaging/linux/ember.desktop (Wayland finds the icon by it)
        app.setWindowIcon(app_icon())
        prefs = load_preferences(paths)
        apply_theme(app, prefs.theme, prefs.font_size)
        window = MainWindow(services)
        window.first_painted.connect(lambda: _report_first_paint(window, app))
        if on_window is not None:
            on_window(window)

        def quit_on_signal(*_) -> None:
            window.close()
            app.quit()

        signal.signal(signal.SIGINT, quit_on_signal)
        signal.signal(signal.SIGTERM, quit_on_signal)
        ticker = QTimer()  # lets Python run its signal handlers while Qt's loop waits
        ticker.timeout.connect(lambda: None)
        ticker.start(250)
        window.show()
        code = app.exec()
        window.close()
        clean_exit = True
        return code
    finally:
        services.close()
        if clean_exit:
            try:  # a good copy for the next start, should this database ever be damaged
                backup_database(paths)
            except (OSError, sqlite3.Error):
                log.exception("could not back up the database")
        lock.release()
        crash_log.close()
