"""The Documents page's controller: collections, their sources, indexing in the background, the folder watch.

One index run at a time (they share the embedding model and both cores); other collections wait in
a queue. A run is `engine.rag.index_job.index_sources` on its own thread with a cancel token: Stop
cancels it (the files finished so far stay indexed) and keeps that collection from being started
again by the watch until the user resumes it. Every few seconds a short job asks each collection
what its folders hold that its index does not (`engine.rag.watch.pending_work`); a collection with
work is indexed. That same check, right after the window opens, is what continues a run that a
kill or a restart cut off.

A collection whose embedding model is the recommended one and not yet here waits for it: the page
asks the user, and the download goes through the window's queue (the Models page lists it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.changes import ChangeNotice, Changes
from app.controllers.downloads_controller import DownloadsController, FilePart
from app.controllers.library_controller import LibraryController
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.errors import EmberError
from engine.jobs import Progress
from engine.preferences import load_preferences
from engine.rag.embedding_models import RECOMMENDED, is_embedding_model
from engine.store.db import connect
from engine.store.documents_repo import (
    DEFAULT_SETTINGS,
    Collection,
    CollectionCounts,
    Document,
    DocumentsRepository,
    Source,
    StoredChunk,
)

WATCH_INTERVAL_MS = 3000


@dataclass(frozen=True)
class CollectionSummary:
    collection: Collection
    counts: CollectionCounts
    state: str  # words for the list: "indexing", "stopped", "up to date", "waiting for its embedding model" ...

    @property
    def id(self) -> int:
        return self.collection.id

    @property
    def model_name(self) -> str:
        path = self.collection.embedding_model_path
        return Path(path).name if path else "no embedding model"


@dataclass(frozen=True)
class DocumentRow:
    document: Document
    chunks: int
    tokens: int
    indexing: bool = False  # the file the running job is on

    @property
    def status(self) -> str:
        return "indexing…" if self.indexing else self.document.status


@dataclass(frozen=True)
class CollectionDetail:
    collection: Collection
    documents: list[DocumentRow]
    sources: list[Source]
    missing_sources: list[str]


@dataclass(frozen=True)
class EmbeddingChoice:
    """A model the user can pick for a collection: the recommended download, or a file they have."""

    label: str
    path: str
    present: bool


class DocumentsController(QObject):
    collections_changed = Signal(object)  # list[CollectionSummary]
    detail_changed = Signal(object)  # CollectionDetail of the selected collection, or None
    index_progress = Signal(int, object)  # collection id, Progress (IndexProgress once files are read)
    indexing_changed = Signal(object)  # the id of the collection being indexed, or None
    index_finished = Signal(int, object)  # collection id, IndexReport (also after a Stop)
    model_needed = Signal(int)  # this collection waits for the recommended embedding model: ask the user
    error = Signal(object)  # EmberError
    notice = Signal(str)

    def __init__(self, services: Services, runner: WorkerRunner, library: LibraryController,
                 downloads: DownloadsController, notices: ChangeNotice, parent=None, *,
                 watch_interval_ms: int = WATCH_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.services = services
        self.runner = runner
        self.library = library
        self.downloads = downloads
        self.notices = notices
        self.repo = DocumentsRepository(services.conn)  # quick SQL on the UI thread
        self.selected: int | None = None
        self.queue: list[int] = []  # collections waiting for their run
        self.stopped: set[int] = set()  # stopped by the user: the watch leaves them until resumed
        self.waiting_for_model: set[int] = set()
        self.declined_model = False  # the user said "not now" to the download: ask again only when asked
        self._running: tuple[int, Worker] | None = None
        self._file: str = ""  # the path of the file the running job is on
        self._files_done: float | None = None
        self._parser = None  # the document reader child, made on the first run
        self._watching: Worker | None = None
        self._closed = False
        self._detail_timer = QTimer(self, singleShot=True, interval=300)  # table refreshes, at most ~3 a second
        self._detail_timer.timeout.connect(self.refresh_detail)
        self.watch_timer = QTimer(self, interval=watch_interval_ms)
        self.watch_timer.timeout.connect(self.check_folders)
        downloads.downloaded.connect(self._on_downloaded)
        downloads.downloads_changed.connect(lambda _rows: self.waiting_for_model and self.refresh())
        notices.changed.connect(self._on_changes)

    def start(self) -> None:
        """Show the collections, then look for work at once (a run cut off by a kill continues) and every few seconds."""
        self.refresh()
        self.check_folders()
        self.watch_timer.start()

    # --- reading ----------------------------------------------------------------------------------
    def summaries(self) -> list[CollectionSummary]:
        return [CollectionSummary(c, self.repo.counts(c.id), self._state(c)) for c in self.repo.list_collections()]

    def _state(self, collection: Collection) -> str:
        if self._running is not None and self._running[0] == collection.id:
            return "indexing"
        if collection.id in self.waiting_for_model:
            return "waiting for its embedding model"
        if collection.id in self.stopped:
            return "stopped"
        if collection.id in self.queue:
            return "waiting to be indexed"
        return ""

    def refresh(self) -> None:
        self.collections_changed.emit(self.summaries())
        self.refresh_detail()

    def refresh_detail(self) -> None:
        if self.selected is None or self._closed:
            self.detail_changed.emit(None)
            return
        try:
            collection = self.repo.get_collection(self.selected)
        except EmberError:
            self.selected = None
            self.detail_changed.emit(None)
            return
        running_here = self._running is not None and self._running[0] == collection.id
        rows = [DocumentRow(d, n, tokens, running_here and d.path == self._file and d.status != "indexed")
                for d, n, tokens in self.repo.document_rows(collection.id)]
        sources = self.repo.list_sources(collection.id)
        missing = [s.path for s in sources if not Path(s.path).exists()]
        self.detail_changed.emit(CollectionDetail(collection, rows, sources, missing))

    def select(self, collection_id: int | None) -> None:
        self.selected = collection_id
        self.refresh_detail()

    def chunks(self, document_id: int) -> list[StoredChunk]:
        return self.repo.chunks_of(document_id)

    def embedding_choices(self) -> list[EmbeddingChoice]:
        """The recommended model first (downloaded on first use), then the embedding models in the library."""
        recommended = RECOMMENDED.destination(self.services.paths)
        choices = [EmbeddingChoice(f"{RECOMMENDED.summary} (recommended"
                                   + (")" if recommended.is_file() else ", downloaded on first use)"),
                                   str(recommended), recommended.is_file())]
        for entry in self.library.entries:
            if entry.path != str(recommended) and is_embedding_model(entry.info, entry.path):
                choices.append(EmbeddingChoice(entry.name, entry.path, Path(entry.path).is_file()))
        chosen = self._default_model()
        if chosen is not None:  # the Settings page's default comes first
            choices.sort(key=lambda choice: choice.path != chosen)
            if choices[0].path != chosen:
                choices.insert(0, EmbeddingChoice(f"{Path(chosen).name} (your default)", chosen, True))
        return choices

    def _default_model(self) -> str | None:
        """The default embedding model chosen on the Settings page, if it is still there."""
        chosen = load_preferences(self.services.paths).embedding_model
        return chosen if chosen and Path(chosen).is_file() else None

    # --- editing (quick SQL here; the work they cause runs on a worker) -------------------------
    def create(self, name: str, model_path: str | None = None, settings: dict | None = None) -> int | None:
        """A new collection (its embedding model: the recommended one unless another is given)."""
        model_path = model_path or self._default_model() or str(RECOMMENDED.destination(self.services.paths))
        try:
            collection = self.repo.create_collection(name, embedding_model_path=model_path,
                                                     settings={**DEFAULT_SETTINGS, **(settings or {})})
        except EmberError as error:
            self.error.emit(error)
            return None
        self.selected = collection.id
        self._changed()
        return collection.id

    def rename(self, collection_id: int, name: str) -> None:
        try:
            self.repo.rename_collection(collection_id, name)
        except EmberError as error:
            self.error.emit(error)
        self._changed()

    def delete(self, collection_id: int) -> None:
        """The collection and its index go; the user's files stay where they are."""
        if self._running is not None and self._running[0] == collection_id:
            self._running[1].cancel.cancel()  # its worker finds the collection gone and ends
        self.queue = [c for c in self.queue if c != collection_id]
        try:
            self.repo.delete_collection(collection_id)
        except EmberError as error:
            self.error.emit(error)
        if self.selected == collection_id:
            self.selected = None
        self._changed()

    def add_paths(self, collection_id: int, paths: list[str]) -> None:
        """Files and folders the user added (a button or a drop); indexing starts."""
        added = 0
        for raw in paths:
            path = Path(raw).expanduser()
            if not path.exists():
                self.error.emit(EmberError(f"{raw} does not exist.", "Add files or folders that exist."))
                continue
            try:
                self.repo.add_source(collection_id, str(path.resolve()), "folder" if path.is_dir() else "file")
                added += 1
            except EmberError as error:
                self.error.emit(error)
        if added:
            self.stopped.discard(collection_id)
            self._changed()
            self.index(collection_id)

    def remove_source(self, collection_id: int, source_id: int) -> None:
        """The folder or file leaves the collection; the next run takes its documents out of the index."""
        try:
            self.repo.remove_source(source_id)
        except EmberError as error:
            self.error.emit(error)
            return
        self._changed()
        self.index(collection_id)

    def change_settings(self, collection_id: int, model_path: str, settings: dict) -> None:
        """Another embedding model or other chunk sizes: every document is chunked and embedded again
        (the page has said so and the user agreed); the same ones change nothing."""
        collection = self.repo.get_collection(collection_id)
        same_model = model_path == collection.embedding_model_path
        sha = collection.embedding_model_sha256 if same_model else None
        try:
            if same_model and collection.built_with(sha, settings):
                return
            self.repo.change_embedding(collection_id, model_path, sha, settings)
        except EmberError as error:
            self.error.emit(error)
            return
        self._changed()
        self.index(collection_id)

    def _changed(self) -> None:
        self.refresh()
        self.notices.publish(Changes(collections=True, source=self))

    # --- indexing ---------------------------------------------------------------------------------
    @property
    def running_id(self) -> int | None:
        return self._running[0] if self._running is not None else None

    def index(self, collection_id: int) -> None:
        """Index this collection as soon as no other run is going (a run already queued is not queued twice)."""
        if collection_id in self.stopped or self._closed:
            return
        if collection_id not in self.queue and self.running_id != collection_id:
            self.queue.append(collection_id)
        self._next()

    def stop(self) -> None:
        """Stop the running collection; what was finished stays. The watch leaves it until Resume."""
        if self._running is not None:
            self.stopped.add(self._running[0])
            self._running[1].cancel.cancel()
            self.refresh()

    def resume(self, collection_id: int) -> None:
        self.stopped.discard(collection_id)
        self.index(collection_id)
        self.refresh()

    def _next(self) -> None:
        if self._running is not None or self._closed:
            return
        while self.queue:
            collection_id = self.queue.pop(0)
            try:
                collection = self.repo.get_collection(collection_id)
            except EmberError:
                continue  # deleted meanwhile
            if self._needs_recommended_model(collection):
                continue
            self._start(collection_id)
            return
        self.refresh()

    def _needs_recommended_model(self, collection: Collection) -> bool:
        """True (and the download is asked for) when the collection's model is the recommended one and is not here."""
        recommended = RECOMMENDED.destination(self.services.paths)
        if collection.embedding_model_path != str(recommended) or recommended.is_file():
            return False
        self.waiting_for_model.add(collection.id)
        if self._recommended_download_key() is None and not self.declined_model:
            self.model_needed.emit(collection.id)
        return True

    def download_recommended(self) -> None:
        """The user agreed: the recommended embedding model comes through the window's download queue
        (a paused or failed download of it goes on from its part)."""
        self.declined_model = False
        item = self.recommended_download()
        if item is not None and item.state in ("paused", "failed"):
            self.downloads.resume(item.key)
        elif self._recommended_download_key() is None:
            self.downloads.download(RECOMMENDED.repo_id, [FilePart(RECOMMENDED.filename, None, RECOMMENDED.size_bytes)])
        self.refresh()

    def decline_download(self) -> None:
        self.declined_model = True
        self.refresh()

    def recommended_download(self):
        """The queue's item for the recommended model's file (None before it was asked for)."""
        return next((item for item in self.downloads.queue.items()
                     if item.repo_id == RECOMMENDED.repo_id and item.path == RECOMMENDED.filename), None)

    def _recommended_download_key(self) -> str | None:
        """The queue key of the recommended model's download while it is queued or running."""
        item = self.recommended_download()
        if item is not None and (item.state in ("queued", "downloading") or self.downloads.running(item.key)):
            return item.key
        return None

    def _on_downloaded(self, path: str) -> None:
        if path == str(RECOMMENDED.destination(self.services.paths)) and self.waiting_for_model:
            waiting, self.waiting_for_model = sorted(self.waiting_for_model), set()
            for collection_id in waiting:
                self.index(collection_id)

    def _start(self, collection_id: int) -> None:
        from engine.rag.index_job import index_sources  # numpy and the readers: not before the window paints
        from engine.rag.parser import DocumentParser

        if self._parser is None:
            self._parser = DocumentParser(log_dir=self.services.paths.logs)
        worker = Worker(index_sources, self.services.paths.db, collection_id, self.services.embedder, self._parser,
                        name=f"index-{collection_id}")
        worker.kwargs["cancel"] = worker.cancel
        worker.progress.connect(lambda p, cid=collection_id: self._on_progress(cid, p))
        worker.result.connect(lambda report, cid=collection_id: self.index_finished.emit(cid, report))
        worker.error.connect(self.error)
        worker.finished.connect(lambda cid=collection_id, w=worker: self._on_finished(cid, w))
        self._running = (collection_id, worker)
        self._file = ""
        self.indexing_changed.emit(collection_id)
        self.refresh()
        self.runner.start(worker, long=True)

    def _on_progress(self, collection_id: int, progress: Progress) -> None:
        file = getattr(progress, "path", "")
        if file != self._file or progress.done != self._files_done:  # a file started or finished: the table shows it
            self._file, self._files_done = file, progress.done
            if collection_id == self.selected:
                self._detail_timer.start()
        self.index_progress.emit(collection_id, progress)

    def _on_finished(self, collection_id: int, worker: Worker) -> None:
        if self._running is None or self._running[1] is not worker:
            return
        self._running = None
        self._file = ""
        self.indexing_changed.emit(None)
        self.notices.publish(Changes(collections=True, source=self))
        self.refresh()
        self._next()

    # --- the watch ----------------------------------------------------------------------------------
    def check_folders(self) -> None:
        """Look for new, changed and deleted files in every collection (a short job); index those with work."""
        if self._watching is not None or self._closed:
            return
        worker = Worker(_pending_by_collection, self.services.paths.db, name="watch-documents")
        worker.result.connect(self._on_pending)
        worker.finished.connect(lambda: setattr(self, "_watching", None))
        self._watching = worker
        self.runner.start(worker)

    def _on_pending(self, pending: dict) -> None:
        for collection_id, work in pending.items():
            if work and collection_id not in self.stopped and collection_id != self.running_id:
                self.index(collection_id)

    def _on_changes(self, changes: Changes) -> None:
        if changes.source is not self and (changes.collections or changes.library):
            self.refresh()

    def close(self) -> None:
        """The window is closing (its jobs were cancelled and waited for): end the reader child."""
        self._closed = True
        self.watch_timer.stop()
        if self._parser is not None:
            self._parser.close()


def _pending_by_collection(db_path: Path) -> dict:
    """On a worker: every collection's PendingWork, on a connection of its own."""
    from engine.rag.watch import pending_work

    conn = connect(db_path, migrate=False)
    try:
        repo = DocumentsRepository(conn)
        return {c.id: pending_work(repo, c.id) for c in repo.list_collections()}
    finally:
        conn.close()
