"""The welcome of a first start, at the top of the Chat page: what this machine can run, the bundled
starter model (works offline), a model recommended for this machine with its size and expected
speed, the models other apps keep here, and "Open a GGUF file…". It never blocks: everything else on
the page works while it shows, and "Skip" puts it away for good.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.controllers.welcome_controller import WelcomeController
from app.views.widgets import named
from engine.paths import starter_model
from engine.progress_text import human_size


class WelcomePanel(QFrame):
    open_file_requested = Signal()

    def __init__(self, controller: WelcomeController, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePanel")
        self.setAccessibleName("Welcome")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.controller = controller
        self.pick = None
        layout = QVBoxLayout(self)
        head = QHBoxLayout()
        title = QLabel("<b>Welcome to Ember.</b> Pick a model to start; everything else works meanwhile.")
        title.setWordWrap(True)
        self.skip = named(QPushButton("Skip"), "welcomeSkipButton", "Skip the welcome", "I know what I want")
        head.addWidget(title, 1)
        head.addWidget(self.skip)
        layout.addLayout(head)
        self.machine = named(QLabel("Looking at this machine…"), "welcomeMachineLabel", "This machine")
        self.machine.setWordWrap(True)
        layout.addWidget(self.machine)

        starter = starter_model()
        self.starter_text = named(QLabel(), "welcomeStarterLabel", "The starter model")
        self.starter_text.setWordWrap(True)
        self.use_starter = named(QPushButton("Use it"), "welcomeUseStarterButton", "Use the starter model")
        self.starter_row = self._row(self.starter_text, self.use_starter)
        self.starter_row.setVisible(starter is not None)
        if starter is not None:
            self.starter_text.setText(f"Bundled, works offline: {starter.stem} ({human_size(starter.stat().st_size)}), "
                                      "a tiny model to try Ember with.")
        layout.addWidget(self.starter_row)

        self.recommended_text = named(QLabel("Finding a model for this machine…"), "welcomeRecommendedLabel",
                                      "The recommended model")
        self.recommended_text.setWordWrap(True)
        self.download = named(QPushButton("Download"), "welcomeDownloadButton", "Download the recommended model")
        self.download.setEnabled(False)
        layout.addWidget(self._row(self.recommended_text, self.download))

        self.found_box = QVBoxLayout()
        layout.addLayout(self.found_box)
        self.open_file = named(QPushButton("Open a GGUF file…"), "welcomeOpenFileButton", "Open a GGUF file you have")
        row = QHBoxLayout()
        row.addWidget(QLabel("Already have models?"))
        row.addWidget(self.open_file)
        row.addStretch(1)
        layout.addLayout(row)
        self._online: bool | None = None

        c = controller
        c.recommended.connect(self._show_pick)
        c.starter_speed.connect(self._show_starter_speed)
        c.found.connect(self._show_found)
        c.online.connect(self._show_online)
        c.dismissed.connect(self.hide)
        c.runtime.hardware_known.connect(self._show_machine)
        if c.runtime.hardware is not None:
            self._show_machine(c.runtime.hardware)
        self.skip.clicked.connect(c.dismiss)
        self.use_starter.clicked.connect(c.use_starter)
        self.download.clicked.connect(lambda: self.pick and c.download(self.pick))
        self.open_file.clicked.connect(self.open_file_requested)

    def _row(self, text: QLabel, button: QPushButton) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(text, 1)
        layout.addWidget(button)
        return row

    def _show_machine(self, hardware) -> None:
        self.machine.setText(f"This machine: {hardware.summary}. Models run on: {hardware.backend}.")

    def _show_starter_speed(self, fit) -> None:
        if fit is not None and fit.tokens_per_s:
            self.starter_text.setText(self.starter_text.text().rstrip(".") + f", {fit.speed_label} here.")

    def _show_pick(self, pick) -> None:
        self.pick = pick
        if pick is None:
            self.recommended_text.setText("None of the models Ember recommends fits in this machine's free memory; "
                                          "the starter model does.")
            return
        c = pick.candidate
        self.recommended_text.setText(
            f"For this machine: <b>{c.title}</b> ({c.quantization}, about {human_size(c.approx_size)}, {c.licence}): "
            f"{pick.fit.label.lower()}, {pick.fit.speed_label}.")
        self._update_download()

    def _show_online(self, online: bool) -> None:
        self._online = online
        self._update_download()

    def _update_download(self) -> None:
        self.download.setEnabled(bool(self.pick) and self._online is True)
        if self._online is False:
            self.download.setToolTip("The Hub cannot be reached: no network?")
            self.recommended_text.setText(self.recommended_text.text().split(" — ")[0] +
                                          " — <i>no network: it can be downloaded later from the Models page; open "
                                          "your own files or use the starter model meanwhile.</i>")

    def _show_found(self, found: list) -> None:
        for item in found:
            text = named(QLabel(f"{item.app} keeps {len(item.files)} model file{'s' if len(item.files) != 1 else ''} "
                                f"in {item.folder}."), f"welcomeFound{item.app.replace(' ', '')}Label",
                         f"Models of {item.app}")
            text.setWordWrap(True)
            add = named(QPushButton("Add to the library"), f"welcomeAdd{item.app.replace(' ', '')}Button",
                        f"Add the models of {item.app}", "They stay where they are")
            add.clicked.connect(lambda _=False, f=item: self.controller.add_found(f))
            self.found_box.addWidget(self._row(text, add))
