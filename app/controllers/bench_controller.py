"""BenchController: the retrieval bench of one collection (engine/rag/bench.py) for the bench panel.

Writing questions runs on its own thread (it asks the loaded chat model once per chunk: seconds each)
and Stop ends it, keeping what was written; scoring runs on a worker too (it may start the embedding
model). The review (edit, keep, drop) is quick SQL on the UI thread's connection. The bench
uses the chat model the user loaded on the Chat page and never loads one itself: a model chosen
here behind the user's back would take the memory the chat needs.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.errors import Cancelled, EmberError, InvalidInput
from engine.jobs import CancelToken, Progress
from engine.rag import bench
from engine.store.documents_repo import DocumentsRepository
from engine.store.qa_repo import QARepository

NO_CHAT_MODEL = EmberError("Load a chat model on the Chat page first: it writes the questions.",
                           "The bench uses the chat model you loaded; it never loads one itself.")


class BenchController(QObject):
    pairs_changed = Signal(object)  # list[QAPair] of the shown collection
    progress = Signal(str)  # what is being done, in words ("" when done)
    busy_changed = Signal(bool)
    written = Signal(object)  # engine.rag.bench.WriteReport
    report_ready = Signal(object)  # engine.rag.bench.BenchReport (None: the shown collection changed)
    error = Signal(object)  # EmberError

    def __init__(self, services: Services, runner: WorkerRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.runner = runner
        self.qa = QARepository(services.conn)
        self.collection_id: int | None = None
        self.seed = 0  # the chunks' order; each collection's chunks already asked about are skipped anyway
        self._worker: Worker | None = None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    # --- which collection -------------------------------------------------------------------------
    def show_collection(self, collection_id: int | None) -> None:
        """Show this collection's pairs (None: none). A job of the previous one is stopped."""
        if collection_id != self.collection_id:
            self.stop()
            self.collection_id = collection_id
            self.report_ready.emit(None)
        self.refresh()

    def refresh(self) -> None:
        self.pairs_changed.emit(self.qa.list_pairs(self.collection_id) if self.collection_id is not None else [])

    # --- writing ----------------------------------------------------------------------------------
    def write(self, count: int) -> None:
        """Ask the loaded chat model for `count` new questions about the shown collection."""
        if self.busy or self.collection_id is None:
            return
        loaded = self.services.chat_model
        if loaded is None:
            self.error.emit(NO_CHAT_MODEL)
            return
        try:
            client = loaded.host.client()
        except EmberError as error:  # it died since the registry looked
            self.error.emit(error)
            return
        cancel = CancelToken()
        worker = Worker(_write, self.services, self.collection_id, client, count, self.seed, cancel, cancel=cancel,
                        name="bench-write")
        worker.progress.connect(self._on_write_progress)
        worker.result.connect(self._for_shown(self.collection_id, self._on_written))
        self._start(worker, "Asking the chat model…")

    def _on_write_progress(self, progress: Progress) -> None:
        self.progress.emit(progress.message)
        self.refresh()  # the drafts appear as they are written

    def _on_written(self, report: bench.WriteReport) -> None:
        self.refresh()
        self.written.emit(report)

    # --- the review -------------------------------------------------------------------------------
    def edit(self, pair_id: int, *, question: str | None = None, answer: str | None = None) -> None:
        try:
            self.qa.edit(pair_id, question=question, answer=answer)
        except EmberError as error:
            self.error.emit(error)
        self.refresh()  # the stored text, also when the edit was refused

    def set_status(self, pair_ids: list[int], status: str) -> None:
        """Keep, drop, or return to draft."""
        try:
            self.qa.set_status(pair_ids, status)
        except EmberError as error:
            self.error.emit(error)
        self.refresh()

    def keep_drafts(self) -> None:
        if self.collection_id is not None:
            self.set_status([p.id for p in self.qa.list_pairs(self.collection_id, ("draft",))], "kept")

    # --- scoring ----------------------------------------------------------------------------------
    def score(self, include_drafts: bool = False) -> None:
        """Score each retrieval mode on the kept questions (and the drafts when asked)."""
        if self.busy or self.collection_id is None:
            return
        try:  # quick checks first: no need to start the embedding model to say there is nothing to score
            bench.pairs_to_score(self.services.conn, self.collection_id, include_drafts)
        except EmberError as error:
            self.error.emit(error)
            return
        cancel = CancelToken()
        worker = Worker(_score, self.services, self.collection_id, include_drafts, cancel, cancel=cancel,
                        name="bench-score")
        worker.progress.connect(lambda progress: self.progress.emit(progress.message))
        worker.result.connect(self._for_shown(self.collection_id, self.report_ready.emit))
        self._start(worker, "Scoring…")

    # --- jobs -------------------------------------------------------------------------------------
    def _start(self, worker: Worker, message: str) -> None:
        worker.error.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.busy_changed.emit(True)
        self.progress.emit(message)
        self.runner.start(worker, long=True)

    def _for_shown(self, collection_id: int, slot):
        """`slot`, called only while that collection is still the one shown (a job of another one that
        was stopped when the user switched may still finish)."""
        return lambda value: slot(value) if self.collection_id == collection_id else None

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel.cancel()

    def _on_error(self, error: EmberError) -> None:
        if not isinstance(error, Cancelled):
            self.error.emit(error)

    def _on_finished(self) -> None:
        self._worker = None
        self.progress.emit("")
        self.busy_changed.emit(False)


def _write(services: Services, collection_id: int, client, count: int, seed: int, cancel: CancelToken):
    """On a worker: its own connection for the writes."""
    conn = services.connect()
    try:
        return (yield from bench.write_pairs(conn, collection_id, client, count, seed=seed, cancel=cancel))
    finally:
        conn.close()


def _score(services: Services, collection_id: int, include_drafts: bool, cancel: CancelToken):
    """On a worker: the collection's embedding model (started if needed), then the bench."""
    conn = services.connect()
    try:
        collection = DocumentsRepository(conn).get_collection(collection_id)
        model = collection.embedding_model_path
        if not model or not Path(model).is_file():
            raise InvalidInput(f"The embedding model of {collection.name} is missing ({model or 'none chosen'}).",
                               "Choose its embedding model on the Documents page and index it again.")
        yield Progress(0, None, "", "Preparing the embedding model…")
        client = yield from services.embedder.ensure(model, cancel)
        return (yield from bench.score(conn, collection_id, client.embed, include_drafts=include_drafts,
                                       cancel=cancel))
    finally:
        conn.close()
