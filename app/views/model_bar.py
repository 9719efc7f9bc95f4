"""The model picker above the chat: the library (starter, downloads, opened files) and the models of
the remote servers the user added, "Open GGUF…", GPU layers ("auto" or a number), Load / Unload, and
the loading progress."""

from __future__ import annotations

from PySide6.QtCore import QConcatenateTablesProxyModel, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QWidget,
)

from app.models.library_model import EntryRole, LibraryModel
from app.views.widgets import named


class ModelBar(QWidget):
    load_requested = Signal(object, object)  # LibraryEntry or RemoteModel, gpu layers ("auto" or int)
    unload_requested = Signal()
    cancel_requested = Signal()
    open_requested = Signal(str)  # a GGUF path the user picked

    def __init__(self, library: LibraryModel, remote=None, parent=None) -> None:
        """`library`: the app's one library model (the library controller fills it); `remote`: the
        remote servers' models (a RowsTableModel of RemoteModel, listed after the library's)."""
        super().__init__(parent)
        self.setObjectName("modelBar")
        self.loaded_path: str | None = None
        self.loading = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 4)
        self.models = library
        self._chosen_path: str | None = None  # the choice to keep across a rescan (the model resets)
        self.picker = QConcatenateTablesProxyModel(self)
        for source in (library, remote):
            if source is not None:
                source.modelAboutToBeReset.connect(self._remember_choice)
                self.picker.addSourceModel(source)
        if remote is not None:
            remote.modelReset.connect(lambda: self.library_changed())
        self.combo = named(QComboBox(), "modelCombo", "Model")
        self.combo.setModel(self.picker)
        self.combo.setMinimumContentsLength(18)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setPlaceholderText("Looking for models…")
        self.open_button = named(QPushButton("Open GGUF…"), "openModelButton", "Open a GGUF file")
        self.gpu_layers = named(QSpinBox(), "gpuLayersSpin", "GPU layers",
                                "Layers that run on the GPU. auto: as many as fit in free GPU memory "
                                "(none on a machine without CUDA or Metal); 0: CPU only.")
        self.gpu_layers.setRange(-1, 999)
        self.gpu_layers.setSpecialValueText("GPU layers: auto")
        self.gpu_layers.setPrefix("GPU layers: ")
        self.gpu_layers.setValue(-1)
        self.load_button = named(QPushButton("Load"), "loadModelButton", "Load model")
        self.progress = named(QProgressBar(), "loadProgress", "Model loading progress")
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(120)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = named(QLabel("No model loaded"), "modelStatusLabel", "Model status")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setMinimumWidth(60)
        for widget in (self.combo, self.open_button, self.gpu_layers, self.load_button, self.progress):
            layout.addWidget(widget)
        layout.addWidget(self.status, 1)

        self.load_button.clicked.connect(self._on_load_clicked)
        self.open_button.clicked.connect(self.open_dialog)
        self.combo.currentIndexChanged.connect(lambda _row: self._update_button())

    @property
    def loaded(self) -> bool:
        return self.loaded_path is not None

    def _selected_is_loaded(self) -> bool:
        entry = self.entry()
        return self.loaded and entry is not None and entry.path == self.loaded_path

    def _update_button(self) -> None:
        if self.loading:
            text, name = "Cancel", "Cancel loading"
        elif self._selected_is_loaded():
            text, name = "Unload", "Unload model"
        else:
            text, name = ("Switch" if self.loaded else "Load"), "Load model"
        self.load_button.setText(text)
        self.load_button.setAccessibleName(name)
        self.load_button.setEnabled(self.loading or self.loaded or self.entry() is not None)

    def _remember_choice(self) -> None:
        entry = self.entry()
        if entry is not None:
            self._chosen_path = entry.path

    def entry(self):
        return self.combo.currentData(EntryRole)

    def gpu_setting(self):
        return "auto" if self.gpu_layers.value() < 0 else self.gpu_layers.value()

    def _row_of(self, path: str | None) -> int:
        for row in range(self.picker.rowCount()):
            entry = self.picker.index(row, 0).data(EntryRole)
            if entry is not None and entry.path == path:
                return row
        return -1

    def library_changed(self, prefer_path: str | None = None) -> None:
        """The library was rescanned: keep the chosen model chosen (else the first usable one)."""
        current = prefer_path or self._chosen_path
        entries = self.models.entries()
        row = self._row_of(current)
        if row < 0:
            row = next((i for i, e in enumerate(entries) if e.info is not None), -1)
        self.combo.setCurrentIndex(row)
        if not entries:
            self.combo.setPlaceholderText("No models yet: open a GGUF file")
        self._update_button()

    def select_path(self, path: str | None) -> None:
        row = self._row_of(path)
        if row >= 0 and not self.loading:
            self.combo.setCurrentIndex(row)

    def _on_load_clicked(self) -> None:
        if self.loading:
            self.cancel_requested.emit()
        elif self._selected_is_loaded():
            self.unload_requested.emit()
        elif self.entry() is not None:
            self.load_requested.emit(self.entry(), self.gpu_setting())

    def open_dialog(self) -> None:
        dialog = QFileDialog(self, "Open a GGUF model", "", "GGUF models (*.gguf)")
        dialog.setObjectName("openModelDialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.open_requested)
        dialog.open()

    # --- states -------------------------------------------------------------------------------
    def show_loading(self, name: str) -> None:
        self.loading, self.loaded_path = True, None
        self.progress.show()
        self.set_status(f"Loading {name}…")
        self._enable_choice(False)
        self._update_button()

    def show_progress(self, message: str) -> None:
        self.set_status(message)

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)

    def show_loaded(self, path: str, text: str) -> None:
        self.loading, self.loaded_path = False, path
        self.progress.hide()
        self.set_status(text)
        self._enable_choice(True)
        self._update_button()

    def show_unloaded(self) -> None:
        self.loading, self.loaded_path = False, None
        self.progress.hide()
        self.set_status("No model loaded")
        self._enable_choice(True)
        self._update_button()

    def _enable_choice(self, on: bool) -> None:
        for widget in (self.combo, self.open_button, self.gpu_layers):
            widget.setEnabled(on)
