"""DocumentParser: the app's side of the document reader child, where a bad file costs one file, never the app.

Untrusted documents are read by native code (PDFium) and by parsers a crafted file can hang or
blow up. So the app never reads them itself: one child process (parse_child.py) reads them, under
a memory limit (RLIMIT_AS) and a time limit per file. The child is kept from file to file (starting
Python and PDFium again for each file would cost more than most files take); a crash or a time-out
ends it, that file fails with the reason, and the next file starts a fresh child.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.child_command import child_command
from engine.errors import Cancelled
from engine.jobs import CancelToken, run_to_end
from engine.rag.document import ParsedDocument
from engine.rag.errors import DocumentError, ReaderStopped, error_from_event
from engine.rag.files import display_name
from engine.rag.formats import document_kind, unsupported
from engine.rag.rendered_page import DEFAULT_SCALE, RenderedPage
from engine.runtime.child import EXIT_AFTER_STDOUT_S, ChildProcess, Limits

# 2 GiB of address space: Python, PDFium and a 32 MiB text file's text several times over fit in it;
# a file that needs more is not worth taking the machine's memory for. 120 s per file: a
# 2000-page book reads in a fraction of that (see the report's pages/s); a hang costs 2 minutes.
DEFAULT_LIMITS = Limits(memory_bytes=2 * 1024**3, wall_s=120.0)
START_TIMEOUT_S = 60.0  # Python and the readers' imports; slow only on a cold, busy machine
ANSWERS = ("parsed", "rendered", "failed")  # the events that answer a request
STOP_TIMEOUT_S = 0.5  # a child past its time is not asked twice: stdin closed, then SIGTERM, then SIGKILL


class DocumentParser:
    """`parse(path, cancel)` -> ParsedDocument, or the file's DocumentError; `render_page(...)` -> RenderedPage
    (one PDF page drawn for the source viewer). One request at a time; `close()` at the end.

    `limits.wall_s` is per file (the child's own life has no limit); `limits.memory_bytes` is the child's.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, log_dir: Path | None = None) -> None:
        self.limits = limits
        self.log_dir = log_dir
        self.starts = 0  # how many children were started: one, unless files crashed or hung
        self._child: ChildProcess | None = None
        self._folder: Path | None = None  # where the child writes each document's JSON
        self._requests = 0
        self._lock = threading.Lock()

    def parse(self, path: str | Path, cancel: CancelToken | None = None) -> ParsedDocument:
        """Read one file in the child. Raises its DocumentError (ReaderStopped for a crash or time-out).

        The document's `path` is absolute. Cancelling stops the child (it may be deep in PDFium) and
        raises Cancelled; the next call starts a fresh one.
        """
        path = Path(path).absolute()  # the child runs in another folder
        cancel = cancel or CancelToken()
        if cancel.cancelled:
            raise Cancelled("Reading documents was stopped.")
        if document_kind(path) is None:  # no need to ask the child
            raise unsupported(path)
        event = self._ask(lambda folder, number: {"result": str(folder / f"{number}.json")}, path, cancel)
        result = Path(event["result"])
        try:
            return ParsedDocument.from_dict(json.loads(result.read_text(encoding="utf-8")))
        finally:
            result.unlink(missing_ok=True)

    def render_page(self, path: str | Path, page: int, passage: str, out_png: str | Path,
                    scale: float = DEFAULT_SCALE, cancel: CancelToken | None = None) -> RenderedPage:
        """Draw one page (1-based) of a PDF to `out_png` in the child, with the passage's lines on it.

        Under the same limits as `parse`; raises the file's DocumentError (NoSuchPage for a page it
        does not have, ReaderStopped for a crash or time-out) or Cancelled. The caller owns the PNG.
        """
        path = Path(path).absolute()
        cancel = cancel or CancelToken()
        if cancel.cancelled:
            raise Cancelled("Reading documents was stopped.")
        if document_kind(path) != "pdf":
            raise DocumentError(f"{display_name(path)} is not a PDF: Ember draws pages of PDF files only.",
                                "Open it in the system viewer.", path=str(path))
        request = {"op": "render", "page": int(page), "passage": passage, "result": str(Path(out_png).absolute()),
                   "scale": float(scale)}
        return RenderedPage.from_dict(self._ask(lambda folder, number: request, path, cancel))

    def parse_many(self, paths: Iterable[str | Path],
                   cancel: CancelToken | None = None) -> Iterator[ParsedDocument | DocumentError]:
        """Each file's document, or its DocumentError, in order: a bad file never stops the others.

        Cancelling raises Cancelled (the file being read is dropped).
        """
        for path in paths:
            try:
                yield self.parse(path, cancel)
            except DocumentError as error:
                yield error

    def close(self) -> None:
        """Stop the child (it exits when its stdin closes) and remove the results folder."""
        with self._lock:
            self._stop_child(timeout=2.0)
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None

    def __enter__(self) -> DocumentParser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the child ------------------------------------------------------------------------------
    def _ask(self, fields, path: Path, cancel: CancelToken) -> dict:
        """Send one request about `path` (`fields(results folder, request number)` adds its own fields)
        and wait for its answer; a "failed" answer is raised as its DocumentError."""
        with self._lock:
            child = self._running_child(cancel)
            self._requests += 1
            request = {"id": self._requests, "path": str(path), **fields(self._folder, self._requests)}
            try:
                child.process.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
                child.process.stdin.flush()
            except OSError:  # it died just now: the wait below says how
                pass
            event = self._answer(child, request["id"], path, cancel)
        if event["type"] == "failed":
            raise error_from_event(event)
        return event

    def _running_child(self, cancel: CancelToken) -> ChildProcess:
        if self._child is not None and self._child.alive:
            return self._child
        self._stop_child()
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="ember-parse-"))
        child = ChildProcess(child_command("engine.rag.parse_child"), label="document-reader",
                             log_dir=self.log_dir, limits=Limits(memory_bytes=self.limits.memory_bytes))
        child.start()
        self.starts += 1
        try:
            ready = run_to_end(child.wait_for("ready", timeout=START_TIMEOUT_S, cancel=cancel))
        except TimeoutError as exc:
            raise DocumentError(f"Ember's document reader did not start within {START_TIMEOUT_S:g} s.",
                                "Try again when the computer is less busy.") from exc
        if ready is None:
            if cancel.cancelled:
                raise Cancelled("Reading documents was stopped.")
            death = child.death()
            raise DocumentError(f"Ember's document reader could not start: {death.reason if death else 'unknown'}.",
                                log_path=str(child.log_path) if child.log_path else None)
        self._child = child
        return child

    def _answer(self, child: ChildProcess, request_id: int, path: Path, cancel: CancelToken) -> dict:
        """The child's event for this request; stops the child on a cancel or past the time limit."""
        wall_s = self.limits.wall_s
        deadline = time.monotonic() + wall_s if wall_s is not None else None
        while True:
            event = child.next_event(0.05)
            if event is not None and event.get("id") == request_id and event.get("type") in ANSWERS:
                return event
            if cancel.cancelled:
                self._stop_child(timeout=STOP_TIMEOUT_S)
                raise Cancelled("Reading documents was stopped.")
            if child.finished:  # it died on this file
                child.wait(EXIT_AFTER_STDOUT_S)
                death = child.death()
                self._stop_child()  # closes its pipes; the next file starts a fresh child
                raise self._stopped(path, child, death.reason if death else "it exited")
            if deadline is not None and time.monotonic() > deadline:
                self._stop_child(timeout=STOP_TIMEOUT_S)
                raise self._stopped(path, child, f"it took longer than {wall_s:g} s")

    def _stopped(self, path: Path, child: ChildProcess, why: str) -> ReaderStopped:
        return ReaderStopped(f"Ember's document reader stopped on {display_name(path)}: {why}.", path=str(path),
                             log_path=str(child.log_path) if child.log_path else None)

    def _stop_child(self, timeout: float = 5.0) -> None:
        if self._child is not None:
            self._child.stop(timeout=timeout)
            self._child = None


