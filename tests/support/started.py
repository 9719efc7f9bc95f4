"""The main window after Ember's own start (lock, recovery, settings), as a desktop start opens it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.application import open_home
from app.views.main_window import MainWindow


@contextmanager
def started_window(paths, qtbot) -> Iterator[MainWindow]:
    """open_home on `paths`, then the main window on its services, shown; closed, and the home unlocked, after."""
    lock, services = open_home(paths)
    try:
        window = MainWindow(services)
        qtbot.addWidget(window)
        window.show()
        yield window
        window.close()
    finally:
        services.close()
        lock.release()
