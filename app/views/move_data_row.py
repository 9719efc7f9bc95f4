"""Settings → Where Ember keeps things → Move…: copy Ember's data to another folder (a bigger disk)
with progress, then offer to restart into it. The copying is engine/store/move_home.py; the old
folder stays until the user deletes it. With EMBER_HOME set the environment decides, so the button
is off and says why."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, Signal
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from app.views.widgets import named
from app.workers import Worker, WorkerRunner
from engine.errors import Cancelled, EmberError
from engine.jobs import CancelToken, Progress
from engine.paths import EmberPaths
from engine.progress_text import human_size
from engine.store.move_home import move_home

EXPLAINED = ("Move… copies all of Ember's data to another folder, used from the next start; "
             "the old folder stays until you delete it.")


class MoveDataRow(QWidget):
    status_message = Signal(str)
    error_shown = Signal(object)
    moved = Signal(str)  # the new data folder

    def __init__(self, paths: EmberPaths, runner: WorkerRunner, parent=None) -> None:
        super().__init__(parent)
        self.paths, self.runner = paths, runner
        self.worker: Worker | None = None
        self.move_button = named(QPushButton("Move…"), "moveDataButton", "Move Ember's data to another folder")
        self.cancel_button = named(QPushButton("Stop"), "cancelMoveDataButton", "Stop moving the data")
        self.restart_button = named(QPushButton("Restart now"), "restartButton", "Restart Ember in the new folder")
        self.progress = named(QProgressBar(), "moveDataProgress", "Copying Ember's data")
        self.note = named(QLabel(EXPLAINED), "moveDataNote", "About moving the data")
        self.note.setWordWrap(False)  # one line: a wrapped label in a form row asks for four lines of height
        layout = QHBoxLayout(self)  # the note goes on a row of its own, under this one (the page places it)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.move_button, self.cancel_button, self.restart_button):
            layout.addWidget(widget)
        layout.addWidget(self.progress, 1)
        layout.addStretch(1)
        for widget in (self.cancel_button, self.restart_button, self.progress):
            widget.hide()
        if os.environ.get("EMBER_HOME"):
            self.move_button.setEnabled(False)
            self.note.setText(f"EMBER_HOME is set, so Ember keeps its data in {paths.home}. To move it, copy that "
                              "folder and start Ember with EMBER_HOME naming the copy, or unset EMBER_HOME and use Move….")
        self.move_button.clicked.connect(self._choose)
        self.cancel_button.clicked.connect(lambda: self.worker and self.worker.cancel.cancel())
        self.restart_button.clicked.connect(restart)

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder for Ember's data")
        if folder:
            self.move_to(folder)

    def move_to(self, folder: str) -> Worker:
        """Copy the data to `folder` off the UI thread; the row shows how far it got."""
        self.move_button.setEnabled(False)
        self.cancel_button.show()
        self.progress.show()
        self.progress.setValue(0)
        cancel = CancelToken()
        self.worker = Worker(move_home, self.paths, Path(folder), cancel, cancel=cancel, name="move the data folder")
        self.worker.progress.connect(self._show_progress)
        self.worker.result.connect(lambda _value: self._done(folder))
        self.worker.error.connect(self._failed)
        self.worker.finished.connect(self._ended)
        return self.runner.start(self.worker, long=True)

    def _show_progress(self, step: Progress) -> None:
        if step.total:
            self.progress.setValue(int(100 * step.done / step.total))
            self.progress.setFormat(f"{human_size(step.done)} of {human_size(step.total)}")
        self.note.setText(step.message)

    def _done(self, folder: str) -> None:
        if self.worker is not None and self.worker.cancel.cancelled:
            return
        self.note.setText(f"Copied to {folder}. Restart Ember to use it; {self.paths.home} stays until you delete it.")
        self.restart_button.show()
        self.moved.emit(folder)
        self.status_message.emit("Moved the data; restart Ember to use the new folder.")

    def _failed(self, error: EmberError) -> None:
        self.note.setText(EXPLAINED)
        if not isinstance(error, Cancelled):  # the user's own Stop: said in the note, not as an error
            self.error_shown.emit(error)

    def _ended(self) -> None:
        cancelled = self.worker is not None and self.worker.cancel.cancelled
        self.cancel_button.hide()
        self.progress.hide()
        self.move_button.setEnabled(not self.restart_button.isVisible())
        if cancelled:
            self.note.setText("Stopped; nothing was moved and Ember keeps using " + str(self.paths.home) + ".")


def restart() -> None:
    """Start Ember again the way it was started, then quit this one (its data is saved as it goes)."""
    frozen = getattr(sys, "frozen", False)
    QProcess.startDetached(sys.executable, sys.argv[1:] if frozen else sys.argv)
    QApplication.instance().quit()
