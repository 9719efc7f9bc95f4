"""The Documents page: collections of the user's files and folders, indexed in the background.

Left, the collections. Right, the chosen one: its folders and files (added with the buttons or by
dropping them on the page), every document with its status (indexed, changed, failed with the
reason, waiting), how far indexing is (files, chunks, speed, time left) with Stop and Resume, how a
file was cut into chunks, and the retrieval bench. Folders are watched while Ember runs. Attaching a
collection to a chat happens in the chat's settings panel.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.controllers.bench_controller import BenchController
from app.controllers.documents_controller import (
    CollectionDetail,
    CollectionSummary,
    DocumentRow,
    DocumentsController,
)
from app.controllers.window_controllers import WindowControllers
from app.models.rows_table_model import Column, RowsTableModel
from app.views.chunk_preview import ChunkPreview
from app.views.collection_dialog import CollectionDialog
from app.views.colors import text_css
from app.views.message_bar import MessageBar
from app.views.retrieval_bench import RetrievalBenchPanel
from app.views.tables import set_rows_keeping_selection, table_view
from app.views.widgets import named
from engine.jobs import Progress
from engine.progress_text import human_duration
from engine.rag.embedding_models import RECOMMENDED

STATUS_MEANINGS = {"failed": "error", "changed": "warning", "pending": "muted", "indexing…": "info"}


def folder_in_source(row: DocumentRow, sources: list[str]) -> str:
    """Where a document lies inside the folder the user added ("" at its top), else its folder."""
    folder = Path(row.document.path).parent
    for source in sources:
        try:
            relative = folder.relative_to(source)
        except ValueError:
            continue
        return "" if str(relative) == "." else f"{relative}/"
    return str(folder)


def document_columns(sources: list[str]) -> list[Column]:
    return [
        Column("File", lambda r: Path(r.document.path).name, tooltip=lambda r: r.document.path),
        Column("Status", lambda r: r.status, tooltip=lambda r: r.document.error or r.status,
               color=lambda r: text_css(STATUS_MEANINGS[r.status]) if r.status in STATUS_MEANINGS else None),
        Column("Pages", lambda r: str(r.document.pages) if r.document.pages else "", True),
        Column("Chunks", lambda r: str(r.chunks) if r.chunks else "", True),
        Column("Details", lambda r: r.document.error or folder_in_source(r, sources),
               tooltip=lambda r: r.document.error or r.document.path,
               color=lambda r: text_css("error") if r.document.error else None),
    ]


def build_page(controllers: WindowControllers, parent=None) -> DocumentsPage:
    """The window's entry point: the page and its controller, made from the window's shared ones."""
    c = controllers
    controller = DocumentsController(c.services, c.runner, c.library, c.downloads, c.notices)
    bench = RetrievalBenchPanel(BenchController(c.services, c.runner))
    page = DocumentsPage(controller, parent, bench=bench)
    controller.setParent(page)
    bench.controller.setParent(page)
    controller.start()
    return page


def progress_words(progress: Progress) -> str:
    """“Indexing report.pdf: 3 of 12 files · 120 chunks · 14 chunks/s · about 40 s left”."""
    file = getattr(progress, "file", "")
    if not file:
        return progress.message
    parts = [f"Indexing {file}: {int(progress.done)} of {int(progress.total or 0)} files",
             f"{progress.chunks} chunks"]
    if progress.chunks_per_s:
        parts.append(f"{progress.chunks_per_s:.0f} chunks/s")
    if progress.eta_s is not None:
        parts.append(f"about {human_duration(progress.eta_s)} left")
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    return " · ".join(parts)


def report_words(report) -> str:
    parts = [f"{report.indexed} indexed", f"{report.unchanged} unchanged"]
    if report.failed:
        parts.append(f"{len(report.failed)} failed")
    if report.removed:
        parts.append(f"{len(report.removed)} removed")
    return f"Done in {human_duration(report.seconds)}: " + ", ".join(parts) + f" ({report.chunks} new chunks)."


class DocumentsPage(QWidget):
    status_message = Signal(str)
    error_shown = Signal(object)  # EmberError

    def __init__(self, controller: DocumentsController, parent=None, *, bench: RetrievalBenchPanel | None = None) -> None:
        super().__init__(parent)
        self.bench = bench  # the retrieval bench's tab (left out by tests that do not need it)
        self.setObjectName("documentsPage")
        self.setAcceptDrops(True)
        self.controller = controller
        self.detail: CollectionDetail | None = None
        self._summaries: dict[int, CollectionSummary] = {}
        self._loading_list = False
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._collections_pane())
        self.stack = QStackedWidget()
        self.stack.addWidget(self._empty_state())
        self.stack.addWidget(self._collection_pane())
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([230, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self._connect()

    # --- building ----------------------------------------------------------------------------------
    def _collections_pane(self) -> QWidget:
        pane = QWidget()
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("<b>Collections</b>")
        self.collections = named(QListWidget(), "collectionsList", "Collections")
        self.collections.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.new_button = named(QPushButton("New…"), "newCollectionButton", "New collection")
        self.rename_button = named(QPushButton("Rename"), "renameCollectionButton", "Rename the collection")
        self.delete_button = named(QPushButton("Delete"), "deleteCollectionButton", "Delete the collection",
                                   "Deletes the collection and its index; your files stay where they are.")
        row = QHBoxLayout()
        for button in (self.new_button, self.rename_button, self.delete_button):
            row.addWidget(button)
        layout.addWidget(title)
        layout.addWidget(self.collections, 1)
        layout.addLayout(row)
        return pane

    def _empty_state(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        text = named(QLabel(
            "<h2>Answer from your own documents</h2>"
            "<p>Make a collection, add files or folders (PDF, Word, EPUB, Markdown, HTML, text, code) — or drop "
            "them here. Ember reads them on this machine, keeps the index up to date while folders change, and "
            "a chat that uses the collection answers with citations that open the right page.</p>"),
            "documentsIntro", "About documents")
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.first_button = named(QPushButton("New collection…"), "createFirstCollectionButton", "New collection")
        layout.addWidget(text)
        layout.addWidget(self.first_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        return page

    def _collection_pane(self) -> QWidget:
        pane = QWidget()
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(6, 0, 0, 0)
        self.title = named(QLabel(), "collectionTitle", "Collection")
        self.summary = named(QLabel(), "collectionSummary", "What the collection holds")
        self.summary.setWordWrap(True)
        self.add_files_button = named(QPushButton("Add files…"), "addFilesButton", "Add files")
        self.add_folder_button = named(QPushButton("Add folder…"), "addFolderButton", "Add a folder")
        self.settings_button = named(QPushButton("Settings…"), "collectionSettingsButton", "Collection settings")
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        for button in (self.add_files_button, self.add_folder_button, self.settings_button):
            head.addWidget(button)
        self.model_bar = MessageBar("info")
        self.model_bar.setObjectName("embeddingModelBar")
        self.download_model_button = self.model_bar.add_button(
            f"Download it ({RECOMMENDED.size_bytes / 1e6:.0f} MB)", "downloadEmbeddingButton",
            "Download the recommended embedding model")
        self.other_model_button = self.model_bar.add_button("Choose another model…", "chooseEmbeddingButton",
                                                            "Choose another embedding model")
        self.progress = named(QProgressBar(), "indexProgress", "Indexing progress")
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.status = named(QLabel(), "indexStatus", "Indexing")
        self.stop_button = named(QPushButton("Stop"), "stopIndexingButton", "Stop indexing",
                                 "Stops after the current file; what is indexed stays.")
        self.resume_button = named(QPushButton("Resume"), "resumeIndexingButton", "Resume indexing")
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.stop_button)
        status_row.addWidget(self.resume_button)
        self.tabs = named(QTabWidget(), "documentsTabs", "Collection")
        self.tabs.addTab(self._files_tab(), "Files")
        self.preview = ChunkPreview()
        self.tabs.addTab(self.preview, "Chunks")
        if self.bench is not None:
            self.tabs.addTab(self.bench, "Retrieval bench")
        layout.addLayout(head)
        layout.addWidget(self.summary)
        layout.addWidget(self.model_bar)
        layout.addWidget(self.progress)
        layout.addLayout(status_row)
        layout.addWidget(self.tabs, 1)
        return pane

    def _files_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.sources = named(QListWidget(), "sourcesList", "Folders and files of the collection")
        self.sources.setMaximumHeight(84)
        self.remove_source_button = named(QPushButton("Remove from the collection"), "removeSourceButton",
                                          "Remove the folder or file from the collection",
                                          "Its documents leave the index; the files themselves stay.")
        row = QHBoxLayout()
        row.addWidget(QLabel("Folders and files:"))
        row.addStretch(1)
        row.addWidget(self.remove_source_button)
        self._source_folders: list[str] = []  # the folders added, for the Details column (read when painted)
        self.documents_model = RowsTableModel(document_columns(self._source_folders), key=lambda r: r.document.id,
                                              parent=self)
        self.documents = table_view("documentsTable", "Documents of the collection", self.documents_model)
        layout.addLayout(row)
        layout.addWidget(self.sources)
        layout.addWidget(self.documents, 1)
        return tab

    def _connect(self) -> None:
        c = self.controller
        c.collections_changed.connect(self._show_collections)
        c.detail_changed.connect(self._show_detail)
        c.index_progress.connect(self._on_progress)
        c.index_finished.connect(self._on_finished)
        c.indexing_changed.connect(lambda _cid: self._update_buttons())
        c.model_needed.connect(lambda _cid: self._update_model_bar())
        c.error.connect(self.error_shown)
        c.notice.connect(self.status_message)
        if self.bench is not None:
            self.bench.error_shown.connect(self.error_shown)
        self.collections.currentItemChanged.connect(self._on_collection_chosen)
        self.collections.itemChanged.connect(self._on_renamed)
        self.new_button.clicked.connect(lambda: self.new_collection())
        self.first_button.clicked.connect(lambda: self.new_collection())
        self.rename_button.clicked.connect(self._rename_current)
        self.delete_button.clicked.connect(lambda: self.delete_current())
        self.add_files_button.clicked.connect(self._add_files_dialog)
        self.add_folder_button.clicked.connect(self._add_folder_dialog)
        self.settings_button.clicked.connect(lambda: self.open_settings())
        self.stop_button.clicked.connect(c.stop)
        self.resume_button.clicked.connect(lambda: self.current_id is not None and c.resume(self.current_id))
        self.remove_source_button.clicked.connect(self._remove_source)
        self.download_model_button.clicked.connect(c.download_recommended)
        self.other_model_button.clicked.connect(lambda: self.open_settings())
        self.documents.selectionModel().currentRowChanged.connect(lambda *_: self._preview_selected())
        self.documents.doubleClicked.connect(lambda _index: self.tabs.setCurrentWidget(self.preview))

    # --- collections -------------------------------------------------------------------------------
    @property
    def current_id(self) -> int | None:
        item = self.collections.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _show_collections(self, summaries: list[CollectionSummary]) -> None:
        self._summaries = {s.id: s for s in summaries}
        self._loading_list = True
        current = self.controller.selected
        self.collections.clear()
        for summary in summaries:
            counts = summary.counts
            line = f"{counts.documents} files · {counts.chunks} chunks"
            if summary.state:
                line += f" · {summary.state}"
            item = QListWidgetItem(f"{summary.collection.name}\n{line}")
            item.setData(Qt.ItemDataRole.UserRole, summary.id)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{summary.collection.name}, {line}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.collections.addItem(item)
            if summary.id == current:
                self.collections.setCurrentItem(item)
        if self.collections.currentItem() is None and self.collections.count():
            self.collections.setCurrentRow(0)
            self.controller.selected = self.current_id
        self._loading_list = False
        self.stack.setCurrentIndex(1 if summaries else 0)
        for button in (self.rename_button, self.delete_button):
            button.setEnabled(bool(summaries))
        self._update_buttons()
        self._update_model_bar()

    def _on_collection_chosen(self, current, _previous) -> None:
        if not self._loading_list:
            self.controller.select(current.data(Qt.ItemDataRole.UserRole) if current is not None else None)

    def _rename_current(self) -> None:
        item = self.collections.currentItem()
        if item is not None:
            self._loading_list = True
            item.setText(self._summaries[self.current_id].collection.name)  # just the name while editing
            self._loading_list = False
            self.collections.editItem(item)

    def _on_renamed(self, item: QListWidgetItem) -> None:
        if self._loading_list:
            return
        collection_id = item.data(Qt.ItemDataRole.UserRole)
        name = item.text().split("\n", 1)[0].strip()
        if name and name != self._summaries[collection_id].collection.name:
            self.controller.rename(collection_id, name)
        else:
            self.controller.refresh()

    def new_collection(self, name: str = "", then_add: list[str] | None = None) -> CollectionDialog:
        """Opens the dialog (not blocking); the collection is made when the user confirms."""
        dialog = CollectionDialog(self.controller.embedding_choices(), self, name=name)

        def made() -> None:
            collection_id = self.controller.create(dialog.name.text(), dialog.model_path(), dialog.settings())
            if collection_id is not None and then_add:
                self.controller.add_paths(collection_id, then_add)

        dialog.accepted.connect(made)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # one dialog at a time lives
        dialog.open()
        return dialog

    def open_settings(self) -> CollectionDialog | None:
        summary = self._summaries.get(self.current_id)
        if summary is None:
            return None
        dialog = CollectionDialog(self.controller.embedding_choices(), self, collection=summary.collection,
                                  counts=summary.counts)

        def saved() -> None:
            name = dialog.name.text().strip()
            if name != summary.collection.name:
                self.controller.rename(summary.id, name)
            self.controller.change_settings(summary.id, dialog.model_path(), dialog.settings())

        dialog.accepted.connect(saved)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # one dialog at a time lives
        dialog.open()
        return dialog

    def delete_current(self) -> QMessageBox | None:
        summary = self._summaries.get(self.current_id)
        if summary is None:
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Delete collection",
                          f"Delete “{summary.collection.name}” and its index ({summary.counts.chunks} chunks)?\n\n"
                          "Your files stay where they are; chats that used it no longer answer from it.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setObjectName("deleteCollectionBox")
        box.accepted.connect(lambda: self.controller.delete(summary.id))
        box.open()
        return box

    # --- the chosen collection ------------------------------------------------------------------
    def _show_detail(self, detail: CollectionDetail | None) -> None:
        shown = detail.collection.id if detail is not None else None
        if self.bench is not None and shown != (self.detail.collection.id if self.detail is not None else None):
            self.bench.show_collection(shown)
        self.detail = detail
        if detail is None:
            self.documents_model.set_rows([])
            self.sources.clear()
            self.preview.show_document(None, [], {})
            return
        collection = detail.collection
        summary = self._summaries.get(collection.id)
        counts = summary.counts if summary else None
        self.title.setText(f"<h3 style='margin:0'>{collection.name}</h3>")
        failed = sum(1 for r in detail.documents if r.document.status == "failed")
        model = Path(collection.embedding_model_path).name if collection.embedding_model_path else "none"
        parts = [f"{len(detail.documents)} documents", f"{counts.chunks if counts else 0} chunks"]
        if failed:
            parts.append(f"{failed} failed")
        parts += [f"embedding model: {model}",
                  f"chunks of {collection.settings.get('chunk_tokens')} tokens, "
                  f"{collection.settings.get('overlap_tokens')} overlap"]
        if detail.missing_sources:
            parts.append("not found now (kept in the index): " + ", ".join(detail.missing_sources))
        self.summary.setText(" · ".join(parts))
        previous = self.sources.currentRow()
        self.sources.clear()
        self._source_folders[:] = [s.path for s in detail.sources if s.kind == "folder"]
        style = self.style()
        for source in detail.sources:
            missing = " (not found now)" if source.path in detail.missing_sources else ""
            icon = style.standardIcon(QStyle.StandardPixmap.SP_DirIcon if source.kind == "folder"
                                      else QStyle.StandardPixmap.SP_FileIcon)
            item = QListWidgetItem(icon, f"{source.path}{missing}")
            item.setData(Qt.ItemDataRole.UserRole, source.id)
            self.sources.addItem(item)
        self.sources.setCurrentRow(min(previous, self.sources.count() - 1))
        self.remove_source_button.setEnabled(bool(detail.sources))
        set_rows_keeping_selection(self.documents, self.documents_model, detail.documents)
        self._preview_selected()
        self._update_buttons()
        self._update_model_bar()

    def _preview_selected(self) -> None:
        row: DocumentRow | None = self.documents_model.row_object(self.documents.currentIndex().row())
        if row is None or self.detail is None:
            self.preview.show_document(None, [], {})
            return
        if self.preview.chunks and self.preview.chunks[0].document_id == row.document.id \
                and len(self.preview.chunks) == row.chunks:
            return  # already shown (a refresh while indexing another file)
        self.preview.show_document(row.document, self.controller.chunks(row.document.id),
                                   self.detail.collection.settings)

    def _update_buttons(self) -> None:
        current = self.current_id
        running = self.controller.running_id
        self.stop_button.setVisible(running is not None and running == current)
        self.resume_button.setVisible(current is not None and current in self.controller.stopped)
        self.progress.setVisible(running is not None and running == current)
        if current is not None and current in self.controller.stopped and running != current:
            self.status.setText("Stopped. What was indexed stays and answers questions; Resume goes on from there.")

    def _update_model_bar(self) -> None:
        """The recommended embedding model: asked for, on its way, or failed (with the reason and a retry)."""
        current = self.current_id
        if current is None or current not in self.controller.waiting_for_model:
            self.model_bar.hide()
            return
        item = self.controller.recommended_download()
        if self.controller._recommended_download_key() is not None:
            message = (f"Downloading {RECOMMENDED.filename}; indexing starts when it is here. The Models page "
                       "shows the download, with Pause.", "")
        elif item is not None and item.state in ("failed", "paused"):
            message = (f"The download of the embedding model {'failed' if item.state == 'failed' else 'is paused'}"
                       + (f": {item.error}" if item.error else "."), "What was downloaded is kept; try again.")
        else:
            message = (f"This collection needs an embedding model: {RECOMMENDED.summary}, "
                       f"licence {RECOMMENDED.licence}.",
                       "Ember downloads it once, into your model library, only if you agree.")
        self.model_bar.show_message(*message)
        self.download_model_button.setVisible(self.controller._recommended_download_key() is None)
        self.download_model_button.setText(f"Download it ({RECOMMENDED.size_bytes / 1e6:.0f} MB)" if item is None
                                           else "Try again")

    # --- indexing -----------------------------------------------------------------------------------
    def _on_progress(self, collection_id: int, progress: Progress) -> None:
        if collection_id != self.current_id:
            return
        if progress.total:
            self.progress.setRange(0, 1000)
            share = getattr(progress, "share_done", None)  # by bytes, moving within a file
            fraction = share if share is not None else progress.done / progress.total
            self.progress.setValue(int(1000 * min(1.0, fraction)))
        else:
            self.progress.setRange(0, 0)  # busy, nothing to count yet
        self.status.setText(progress_words(progress))

    def _on_finished(self, collection_id: int, report) -> None:
        if collection_id == self.current_id and report is not None:
            self.status.setText(report_words(report))

    # --- adding files -----------------------------------------------------------------------------
    def add_paths(self, paths: list[str]) -> None:
        """Files or folders to index: into the chosen collection, or a new one named after the first."""
        if not paths:
            return
        if self.current_id is not None:
            self.controller.add_paths(self.current_id, paths)
        else:
            self.new_collection(Path(paths[0]).stem or "Documents", then_add=paths)

    def _add_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add documents")
        self.add_paths(paths)

    def _add_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder of documents")
        if path:
            self.add_paths([path])

    def _remove_source(self) -> None:
        item = self.sources.currentItem()
        if item is not None and self.current_id is not None:
            self.controller.remove_source(self.current_id, item.data(Qt.ItemDataRole.UserRole))

    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.add_paths([url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()])
        event.acceptProposedAction()

    def window_closed(self) -> None:
        """The window closed with its jobs stopped: the reader child ends."""
        self.controller.close()

