"""The document reader child: `python -m engine.rag.parse_child`, started by DocumentParser (parser.py).

Protocol (the supervisor's, engine/runtime/child.py):
- stdin: one request a line, either
  {"id": 1, "path": "/docs/a.pdf", "result": "/tmp/ember-parse-x/1.json"} (read a document; "op": "parse"), or
  {"id": 2, "op": "render", "path": "/docs/a.pdf", "page": 3, "passage": "...", "result": "/tmp/p.png",
   "scale": 2.0} (draw one PDF page, find the passage on it: page_render.py);
- stdout: {"type": "ready"} once, then one event per request, in order:
  {"type": "parsed", "id", "path", "result", "sections"}: the ParsedDocument is in the `result` file;
  {"type": "rendered", "id", **RenderedPage.to_dict()}: the PNG is in `png_path`, the highlights in the event;
  {"type": "failed", "id", "path", "kind", "reason", "hint"}: a DocumentError's kind and words.
The document travels in a file, not in the event: the supervisor cuts lines over 256 KiB and drops
events beyond 1000 unread ones, and a book's text is bigger than both.
- The child exits when stdin closes, even in the middle of a file: a thread watches stdin.

Any exception on one file (even MemoryError, under the parent's memory limit) becomes a "failed"
event and the child goes on with the next file; only a crash or a hang needs the parent.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback

from engine.rag.errors import DocumentError, DocumentTooBig
from engine.rag.files import display_name
from engine.rag.loaders import load_document  # the readers load before "ready": a file's time is its own
from engine.rag.page_render import render_page
from engine.rag.rendered_page import DEFAULT_SCALE
from engine.runtime.child_protocol import emit, requests_from_parent

TEST_HOOKS_ENV = "EMBER_PARSE_TEST_HOOKS"  # "1": file names with the words below crash, hang or fill the memory


def handle(request: dict, hooks: bool = False) -> dict:
    """Read one document (or draw one page); the event that answers the request."""
    path = str(request.get("path", ""))
    answer = {"id": request.get("id"), "path": path}
    try:
        if hooks:
            _test_hook(path)
        if request.get("op") == "render":
            page = render_page(path, int(request["page"]), str(request.get("passage") or ""), request["result"],
                               float(request.get("scale") or DEFAULT_SCALE))
            return {**page.to_dict(), **answer, "type": "rendered"}
        document = load_document(path)
        with open(request["result"], "w", encoding="utf-8") as file:
            json.dump(document.to_dict(), file)
        return {**answer, "type": "parsed", "result": request["result"], "sections": len(document.sections)}
    except DocumentError as error:
        return {**error.to_event(), **answer}
    except MemoryError:
        error = DocumentTooBig(f"{display_name(path)} needs more memory than Ember lets its document reader use.",
                               path=path)
        return {**error.to_event(), **answer}
    except Exception as exc:  # a reader's bug or a library's surprise: this file fails, the next one is read
        traceback.print_exc()
        error = DocumentError(f"Ember could not read {display_name(path)} ({type(exc).__name__}: {exc}).",
                              path=path)
        return {**error.to_event(), **answer}


def _test_hook(path: str) -> None:
    """Misbehave on purpose for the tests of the parent's limits (only with EMBER_PARSE_TEST_HOOKS=1)."""
    name = os.path.basename(path)
    if "ember-test-crash" in name:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        os.abort()
    if "ember-test-hang" in name:
        threading.Event().wait()
    if "ember-test-memory" in name:
        block = bytearray(8 * 1024**3)  # far over the limit the tests set: MemoryError
        del block


def main() -> int:
    requests = requests_from_parent()
    hooks = os.environ.get(TEST_HOOKS_ENV) == "1"
    emit({"type": "ready", "pid": os.getpid()})
    for request in requests:
        emit(handle(request, hooks))


if __name__ == "__main__":
    sys.exit(main())
