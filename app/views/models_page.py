"""The Models page: find models on the Hub, see which file fits this machine, download, manage the library."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.controllers.downloads_controller import DownloadRow
from app.controllers.library_controller import LibraryController
from app.controllers.models_controller import FileChoice, ModelsController
from app.controllers.window_controllers import WindowControllers
from app.models.rows_table_model import Column, RowsTableModel
from app.views.progress_delegate import ProgressDelegate
from app.views.tables import set_rows_keeping_selection, table_view
from app.views.widgets import named
from engine.progress_text import human_size


def _count(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def _progress_text(row: DownloadRow) -> str:
    item = row.item
    if row.progress is not None and item.state == "downloading":
        return row.progress.message or f"{human_size(row.progress.done)}"
    size = human_size(item.size) if item.size else "?"
    if item.state == "failed":
        return f"failed: {item.error or ''}"
    return f"{human_size(item.done)} of {size}"


def _fraction(row: DownloadRow) -> float | None:
    """How much of the file is here (0..1), for the progress bar; None when the size is unknown."""
    item = row.item
    if item.state == "done":
        return 1.0
    done = row.progress.done if row.progress is not None and item.running else item.done
    total = (row.progress.total if row.progress is not None and row.progress.total else None) or item.size
    return done / total if total else None


def _state(row: DownloadRow) -> str:
    item = row.item
    if item.running:
        return "downloading"
    if item.state in ("queued", "downloading"):
        return "waiting"  # queued, or cut off when Ember closed: it continues from its part
    return item.state


RESULT_COLUMNS = [
    Column("Model", lambda s: s.repo_id.split("/", 1)[-1], tooltip=lambda s: s.repo_id),
    Column("Author", lambda s: s.author or s.repo_id.split("/", 1)[0]),
    Column("Downloads", lambda s: _count(s.downloads), True),
    Column("Likes", lambda s: _count(s.likes), True),
    Column("Updated", lambda s: s.last_modified.strftime("%Y-%m-%d") if s.last_modified else "-"),
    Column("License", lambda s: s.license or "-"),
    Column("Tags", lambda s: ", ".join(t for t in s.tags[:6] if t != "gguf")),
]
FILE_COLUMNS = [
    Column("File", lambda c: c.file.name + ("" if c.file.complete else " (incomplete)")),
    Column("Quant", lambda c: c.file.quantization or "?"),
    Column("Size", lambda c: human_size(c.file.size), True),
    Column("On this machine", lambda c: c.fit.label if c.fit else "unknown"),
    Column("Speed", lambda c: c.fit.speed_label if c.fit else "-"),
]
DOWNLOAD_COLUMNS = [
    Column("File", lambda r: Path(r.item.path).name, tooltip=lambda r: f"{r.item.repo_id}/{r.item.path}"),
    Column("Repository", lambda r: r.item.repo_id),
    Column("State", _state),
    Column("Progress", _progress_text, fraction=_fraction),
]
def build_page(controllers: WindowControllers, parent=None) -> ModelsPage:
    """The window's entry point: the page and its own controller, made from the window's shared ones."""
    c = controllers
    controller = ModelsController(c.services, c.runner, c.downloads, c.notices)
    page = ModelsPage(controller, c.library, parent)
    controller.setParent(page)
    return page


class ModelsPage(QWidget):
    open_in_chat = Signal(object)  # LibraryEntry: the window loads it and shows the Chat page
    error_shown = Signal(object)  # EmberError
    status_message = Signal(str)

    def __init__(self, controller: ModelsController, library: LibraryController, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("modelsPage")
        self.controller = controller
        self.downloads = controller.downloads  # the window's queue: downloads of every page are listed here
        self.library = library
        self._searched = False
        self._shown_repo: str | None = None  # the repo whose card and files are shown
        self.tabs = named(QTabWidget(), "modelsTabs", "Models")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        self.tabs.addTab(self._discover(), "Discover")
        self.tabs.addTab(self._downloads(), "Downloads")
        self.tabs.addTab(self._library(), "Library")
        self._connect()
        self.downloads.refresh_downloads()

    def _discover(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        row = QHBoxLayout()
        self.query_edit = named(QLineEdit(), "hubSearchEdit", "Search the Hub")
        self.query_edit.setPlaceholderText("Search GGUF models on Hugging Face (e.g. qwen, llama, phi)")
        self.sort_combo = named(QComboBox(), "hubSortCombo", "Sort by")
        for label, key in (("Most downloaded", "downloads"), ("Most liked", "likes"), ("Recently updated", "updated")):
            self.sort_combo.addItem(label, key)
        self.search_button = named(QPushButton("Search"), "hubSearchButton", "Search")
        self.busy_label = named(QLabel(""), "hubBusyLabel", "Activity")
        for widget in (self.query_edit, self.sort_combo, self.search_button):
            row.addWidget(widget)
        layout.addLayout(row)
        layout.addWidget(self.busy_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.results_model = RowsTableModel(RESULT_COLUMNS, parent=self)
        self.results_view = table_view("hubResults", "Search results", self.results_model)
        splitter.addWidget(self.results_view)
        detail = QSplitter(Qt.Orientation.Horizontal)
        self.card_view = named(QTextBrowser(), "modelCard", "Model card")
        self.card_view.setOpenExternalLinks(True)
        files_box = QWidget()
        files_layout = QVBoxLayout(files_box)
        ctx_row = QHBoxLayout()
        self.context_spin = named(QSpinBox(), "fitContextSpin", "Context length for the fit estimate")
        self.context_spin.setRange(512, 262144)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setValue(4096)
        ctx_row.addWidget(QLabel("Fit at context"))
        ctx_row.addWidget(self.context_spin)
        ctx_row.addStretch(1)
        self.machine_label = named(QLabel(""), "machineLabel", "This machine")
        self.machine_label.setWordWrap(True)
        self.files_model = RowsTableModel(FILE_COLUMNS, key=lambda c: c.file.name, parent=self)
        self.files_view = table_view("hubFiles", "Files of the model", self.files_model)
        self.download_button = named(QPushButton("Download"), "downloadButton", "Download the selected file")
        files_layout.addLayout(ctx_row)
        files_layout.addWidget(self.machine_label)
        files_layout.addWidget(self.files_view)
        files_layout.addWidget(self.download_button)
        detail.addWidget(self.card_view)
        detail.addWidget(files_box)
        detail.setSizes([400, 600])
        splitter.addWidget(detail)
        layout.addWidget(splitter, 1)
        return page

    def _downloads(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.downloads_model = RowsTableModel(DOWNLOAD_COLUMNS, key=lambda r: r.item.key, parent=self)
        self.downloads_view = table_view("downloadsView", "Downloads", self.downloads_model)
        self.downloads_view.setItemDelegateForColumn(
            next(i for i, c in enumerate(DOWNLOAD_COLUMNS) if c.header == "Progress"), ProgressDelegate(self))
        row = QHBoxLayout()
        self.pause_button = named(QPushButton("Pause"), "pauseDownloadButton", "Pause download")
        self.resume_button = named(QPushButton("Resume"), "resumeDownloadButton", "Resume download")
        self.remove_button = named(QPushButton("Cancel && remove"), "removeDownloadButton", "Cancel and remove")
        for widget in (self.pause_button, self.resume_button, self.remove_button):
            row.addWidget(widget)
        row.addStretch(1)
        layout.addWidget(self.downloads_view)
        layout.addLayout(row)
        return page

    def _library(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.library_model = self.library.model  # the same model as the Chat page's picker
        self.library_view = table_view("libraryView", "Model library", self.library_model)
        row = QHBoxLayout()
        self.chat_button = named(QPushButton("Open in chat"), "openInChatButton", "Open in chat")
        self.reveal_button = named(QPushButton("Show in folder"), "revealButton", "Show in file manager")
        self.delete_button = named(QPushButton("Delete…"), "deleteModelButton", "Delete model")
        self.add_file_button = named(QPushButton("Add file…"), "addModelFileButton", "Add a GGUF file")
        self.add_folder_button = named(QPushButton("Add folder…"), "addModelFolderButton", "Add a folder of models")
        for widget in (self.chat_button, self.reveal_button, self.delete_button, self.add_file_button,
                       self.add_folder_button):
            row.addWidget(widget)
        row.addStretch(1)
        layout.addWidget(self.library_view)
        layout.addLayout(row)
        hint = QLabel("Tip: drop .gguf files anywhere on this page to add them.")
        layout.addWidget(hint)
        self.setAcceptDrops(True)
        return page

    def showEvent(self, event) -> None:
        """The first time the page is shown, Discover lists the most downloaded GGUF models."""
        super().showEvent(event)
        if not self._searched:
            self.search()

    def _update_downloads_tab(self) -> None:
        """The Downloads tab says how many are running: "Downloads (2)"."""
        running = sum(1 for r in self.downloads_model.rows() if r.item.running)
        self.tabs.setTabText(1, f"Downloads ({running})" if running else "Downloads")

    def _connect(self) -> None:
        c = self.controller
        self.search_button.clicked.connect(self.search)
        self.query_edit.returnPressed.connect(self.search)
        self.results_view.selectionModel().currentRowChanged.connect(self._on_result_selected)
        self.context_spin.editingFinished.connect(lambda: c.refit(self.context_spin.value()))
        self.download_button.clicked.connect(self.download_selected)
        self.files_view.selectionModel().currentRowChanged.connect(self._on_file_selected)
        d = self.downloads
        self.pause_button.clicked.connect(lambda: self._with_download(d.pause))
        self.resume_button.clicked.connect(lambda: self._with_download(d.resume))
        self.remove_button.clicked.connect(lambda: self._with_download(d.remove))
        self.chat_button.clicked.connect(self._open_selected_in_chat)
        self.reveal_button.clicked.connect(self._reveal_selected)
        self.delete_button.clicked.connect(self._delete_selected)
        self.add_file_button.clicked.connect(self._add_file_dialog)
        self.add_folder_button.clicked.connect(self._add_folder_dialog)
        c.results_ready.connect(self._on_results)
        c.detail_ready.connect(self._on_detail)
        d.downloads_changed.connect(
            lambda rows: set_rows_keeping_selection(self.downloads_view, self.downloads_model, rows))
        d.download_progress.connect(self._on_download_progress)
        self.downloads_model.modelReset.connect(self._update_downloads_tab)
        self.downloads_model.dataChanged.connect(self._update_downloads_tab)  # progress rows say "running"
        self.library.failed.connect(self.error_shown)
        c.busy.connect(self.busy_label.setText)
        c.error.connect(self.error_shown)
        c.notice.connect(self.status_message)
        d.error.connect(self.error_shown)
        d.notice.connect(self.status_message)

    # --- discover -----------------------------------------------------------------------------
    def search(self) -> None:
        self._searched = True
        query = self.query_edit.text().strip()
        self.controller.search(query, self.sort_combo.currentData())

    def _on_results(self, results) -> None:
        self.results_model.set_rows(results)
        self.busy_label.setText(f"{len(results)} model(s)" if results else "No GGUF models found for that search.")

    def _on_result_selected(self, current, _previous) -> None:
        summary = self.results_model.row_object(current.row())
        if summary is not None:
            self.controller.show_repo(summary.repo_id, self.context_spin.value())

    def _on_detail(self, detail, choices) -> None:
        """A repo opened, or the shown one refitted (a new context, a library change): a refit keeps the
        card where it is and the file the user chose."""
        self.machine_label.setText(f"This machine: {self.controller.machine_summary}. Speeds are estimates until "
                                   "you chat with a model; then Ember measures them.")
        if detail.summary.repo_id == self._shown_repo:
            set_rows_keeping_selection(self.files_view, self.files_model, choices)
            return
        self._shown_repo = detail.summary.repo_id
        self.card_view.setMarkdown(detail.card or f"# {detail.summary.repo_id}\n\n(no model card)")
        self.files_model.set_rows(choices)
        best = next((i for i, c in enumerate(choices) if c.fit and c.fit.fits), 0)
        if choices:
            self.files_view.selectRow(best)

    def _on_file_selected(self, current, _previous) -> None:
        choice = self.files_model.row_object(current.row())
        self.download_button.setText(f"Download {choice.file.name} ({human_size(choice.file.size)})"
                                     if choice is not None else "Download")

    def download_selected(self) -> None:
        choice: FileChoice | None = self.files_model.row_object(self.files_view.currentIndex().row())
        if choice is None:
            return
        if choice.fit is not None and not choice.fit.fits:
            answer = QMessageBox.question(self, "Too big for this machine",
                                          f"{choice.file.name} does not fit in this machine's memory. Download anyway?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.controller.download(choice)
        self.tabs.setCurrentIndex(1)

    # --- downloads ----------------------------------------------------------------------------
    def _on_download_progress(self, row: DownloadRow) -> None:
        if not self.downloads_model.update_row(row):
            self.downloads.refresh_downloads()

    def _with_download(self, action) -> None:
        row = self.downloads_model.row_object(self.downloads_view.currentIndex().row())
        if row is not None:
            action(row.item.key)

    # --- library ------------------------------------------------------------------------------
    def _selected_entry(self):
        return self.library_model.row_object(self.library_view.currentIndex().row())

    def _open_selected_in_chat(self) -> None:
        entry = self._selected_entry()
        if entry is not None and entry.info is not None:
            self.open_in_chat.emit(entry)

    def _reveal_selected(self) -> None:
        entry = self._selected_entry()
        if entry is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(entry.path).parent)))

    def _delete_selected(self) -> None:
        entry = self._selected_entry()
        if entry is None:
            return
        what = "Delete the file" if entry.source == "hub" else "Remove it from the library (your file stays)"
        answer = QMessageBox.question(self, "Delete model", f"{entry.name}\n\n{what}?")
        if answer == QMessageBox.StandardButton.Yes:
            self.library.remove(entry)

    def _add_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.library.add_file(path)

    def _add_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder of models")
        if path:
            self.library.add_folder(path)

    def dragEnterEvent(self, event) -> None:
        if any(url.toLocalFile().lower().endswith(".gguf") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.toLocalFile().lower().endswith(".gguf"):
                self.library.add_file(url.toLocalFile())
