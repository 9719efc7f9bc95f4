"""SourceController: what the source viewer shows, made off the UI thread.

A PDF page is drawn by the document child (DocumentParser.render_page): the app never runs PDFium.
One DocumentParser lives as long as this controller, so that paging through a document costs one
child, started on the first page and stopped by `close()`. The page's PNG is decoded into a QImage
on the worker (a QImage, unlike a QPixmap, may be made off the UI thread) and then deleted.

One page is drawn at a time. A page asked for while another is being drawn waits, and a newer ask
for the same file replaces it: clicking Next five times draws the first and the last page, not
all five (cancelling would stop the child, and starting a new one costs more than a page).

Text-like files are read on a worker with engine.rag.source_text (pure Python, the indexer's
decoding). Every signal carries the file's path, so that two open viewers can share a controller.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from app.workers import Worker, WorkerRunner
from engine.errors import Cancelled, EmberError
from engine.jobs import CancelToken
from engine.rag.parser import DocumentParser
from engine.rag.rendered_page import DEFAULT_SCALE, RenderedPage
from engine.rag.source_text import read_source_text


@dataclass(frozen=True)
class PageRequest:
    path: str
    page: int
    passage: str
    scale: float


class SourceController(QObject):
    page_ready = Signal(object, object)  # RenderedPage, QImage of its pixels
    text_ready = Signal(object)  # SourceText
    error = Signal(object, str)  # EmberError, the path it is about

    def __init__(self, runner: WorkerRunner, log_dir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.log_dir = log_dir
        self.closed = False
        self._parser: DocumentParser | None = None
        self._folder: Path | None = None  # where the child writes the pages' PNGs
        self._names = itertools.count(1)
        self._drawing: Worker | None = None
        self._waiting: dict[str, PageRequest] = {}  # by path: the newest page asked for while one was drawn

    @property
    def busy(self) -> bool:
        return self._drawing is not None

    # --- PDF pages ------------------------------------------------------------------------------
    def render(self, path: str, page: int, passage: str = "", scale: float = DEFAULT_SCALE) -> None:
        """Draw page `page` (1-based) of the PDF; page_ready or error follows."""
        if self.closed:
            return
        request = PageRequest(str(path), int(page), passage, scale)
        if self._drawing is not None:
            self._waiting[request.path] = request
            return
        self._start(request)

    def _start(self, request: PageRequest) -> None:
        if self._parser is None:
            self._parser = DocumentParser(log_dir=self.log_dir)
            self._folder = Path(tempfile.mkdtemp(prefix="ember-pages-"))
        out = self._folder / f"page-{next(self._names)}.png"
        cancel = CancelToken()  # close() cancels it: the child is stopped mid-page
        worker = Worker(_draw_page, self._parser, request, out, cancel, cancel=cancel, name="render-page")
        worker.result.connect(lambda result: self.page_ready.emit(*result))
        worker.error.connect(lambda error: self._failed(error, request.path))
        worker.finished.connect(self._drawn)
        self._drawing = worker
        self.runner.start(worker, long=True)

    def _drawn(self) -> None:
        self._drawing = None
        if self._waiting and not self.closed:
            path = next(iter(self._waiting))
            self._start(self._waiting.pop(path))

    # --- text files -----------------------------------------------------------------------------
    def read_text(self, path: str, line_start: int | None, line_end: int | None, passage: str = "") -> None:
        """Read a text-like file for the viewer; text_ready or error follows."""
        if self.closed:
            return
        self.runner.run(read_source_text, str(path), line_start, line_end, passage, name="read-source",
                        on_result=self.text_ready.emit, on_error=lambda error: self._failed(error, str(path)))

    def _failed(self, error: EmberError, path: str) -> None:
        if not isinstance(error, Cancelled) and not self.closed:
            self.error.emit(error, path)

    # --- the end ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the document child (a page being drawn is dropped) and remove the pages' folder."""
        self.closed = True
        self._waiting.clear()
        if self._drawing is not None:
            self._drawing.cancel.cancel()
            self._drawing = None
        if self._parser is not None:
            self._parser.close()  # waits for a page being drawn to notice the cancel (well under a second)
            self._parser = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _draw_page(parser: DocumentParser, request: PageRequest, out: Path,
               cancel: CancelToken) -> tuple[RenderedPage, QImage]:
    """On a worker: the page drawn by the child, and its pixels decoded (the PNG is deleted)."""
    try:
        rendered = parser.render_page(request.path, request.page, request.passage, out, request.scale, cancel)
        image = QImage(rendered.png_path)
    finally:
        out.unlink(missing_ok=True)
    if image.isNull():
        raise EmberError(f"Ember could not show page {request.page} of {Path(request.path).name}.",
                         "Open it in the system viewer.")
    return rendered, image
