"""The child's side of the supervisor's protocol (engine/runtime/child.py), for every Ember child.

    from engine.runtime.child_protocol import emit, exit_when_parent_goes
    exit_when_parent_goes()              # first thing: a killed parent must leave no child behind
    emit({"type": "ready", "port": 8080})

Light on purpose: a child imports it before anything heavy (llama.cpp, torch, a PDF parser).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from collections.abc import Iterator

_emit_lock = threading.Lock()


def emit(event: dict) -> None:
    """Send one event to the parent: one JSON line on stdout, flushed at once (threads may share stdout)."""
    line = json.dumps(event) + "\n"
    with _emit_lock:
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except BrokenPipeError:
            # The parent is gone (even by SIGKILL) and nobody reads: drop this and every later event
            # rather than fail the work a child finishes on its own (a trainer's last step and checkpoint).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def exit_when_parent_goes(code: int = 0) -> threading.Thread:
    """Exit (with `code`) as soon as stdin closes: the parent stopped us, or it died, even by SIGKILL.

    The parent holds the other end of our stdin; the OS closes it when the parent goes, however it
    goes. `os._exit` because the main thread may be stuck in C code (a model load) that never returns.
    It reads the raw descriptor: a thread blocked in sys.stdin's buffered read holds that buffer's
    lock, and a child that returns from main early then aborts at interpreter shutdown (SIGABRT).
    """
    def watch() -> None:
        try:
            while os.read(sys.stdin.fileno(), 4096):
                pass
        except Exception:  # a closed or broken stdin means the same: the parent is gone
            pass
        os._exit(code)

    thread = threading.Thread(target=watch, name="exit-when-parent-goes", daemon=True)
    thread.start()
    return thread


def read_requests(requests) -> None:
    """Put each stdin line (bytes) on the queue `requests`; exit as soon as stdin closes (the parent went).

    For a child that answers requests (the document reader, the template child); run it in a thread.
    """
    buffer = b""
    try:
        while chunk := os.read(sys.stdin.fileno(), 65536):
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                if line.strip():
                    requests.put(line)
    except OSError:
        pass
    os._exit(0)


def requests_from_parent() -> Iterator[dict]:
    """The parent's requests, one JSON object a line, as they come; a line that is not one is logged to
    stderr and skipped. The process exits when stdin closes (read_requests)."""
    requests: queue.Queue = queue.Queue()
    threading.Thread(target=read_requests, args=(requests,), name="requests", daemon=True).start()
    while True:
        line = requests.get()
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            print(f"not a request: {line[:200]!r}", file=sys.stderr, flush=True)
            continue
        yield request
