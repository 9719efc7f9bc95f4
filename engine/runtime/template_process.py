"""TemplateProcess: the host's side of the template child, where a hostile chat template costs one render.

A render in the host itself could only be stopped between Python steps (a Timer), and a single huge
step (`'x' * 10**9`) neither stops nor stays small. In the child (template_child.py) a render is
bounded for real: its address space is limited (an allocation beyond it fails with MemoryError),
its text is counted (MAX_OUTPUT_CHARS), and past the deadline this side kills the process from
outside, whatever it is doing. The child is kept from render to render (a render costs a pipe
round trip, about a millisecond); after a kill the next render starts a fresh one.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import jinja2
from jinja2.sandbox import SecurityError

from engine.child_command import child_command
from engine.runtime.child import ChildProcess, Limits
from engine.runtime.protocol import RENDER_DEADLINE_S

MEMORY_LIMIT_BYTES = 1024**3  # Python and Jinja take ~60 MB; a prompt's text is at most tens of MB
START_TIMEOUT_S = 60.0  # Python and Jinja's import: slow only on a cold, busy machine (not a render's time)
STOP_TIMEOUT_S = 0.5  # a child past its deadline is not asked twice: stdin closed, SIGTERM, SIGKILL


class TemplateStopped(jinja2.TemplateError):
    """The template went past a limit (time, memory, length of its text): it was stopped, not merely refused."""


class TemplateTimeout(TemplateStopped):
    """The template ran past the deadline and its process was stopped."""


class TemplateProcess:
    """`compile(source)` -> None or why it does not compile; `render(source, context)` -> the text.

    One request at a time (a lock); a template's failure is raised as a jinja2 error: SecurityError
    for a sandbox refusal, TemplateStopped past a limit (TemplateTimeout: the deadline), TemplateError for the rest.
    """

    def __init__(self, deadline_s: float = RENDER_DEADLINE_S, memory_bytes: int | None = MEMORY_LIMIT_BYTES) -> None:
        self.deadline_s = deadline_s
        self.memory_bytes = memory_bytes
        self.starts = 0  # children started: one, unless a template was stopped
        self._child: ChildProcess | None = None
        self._folder: Path | None = None
        self._requests = 0
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The running child's PID (None before the first template)."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    def compile(self, source: str) -> str | None:
        try:
            self._ask(source, None)
        except jinja2.TemplateError as exc:
            return str(exc)
        return None

    def render(self, source: str, context: dict) -> str:
        event, result = self._ask(source, context)
        try:
            return result.read_text(encoding="utf-8", errors="surrogatepass")
        finally:
            result.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            self._stop_child()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None

    # --- the child ------------------------------------------------------------------------------
    def _ask(self, source: str, context: dict | None) -> tuple[dict, Path]:
        with self._lock:
            child = self._running_child()
            self._requests += 1
            result = self._folder / f"{self._requests}.txt"
            request = {"id": self._requests, "source": source, "result": str(result)}
            if context is not None:
                request["context"] = context
            try:
                child.process.stdin.write(json.dumps(request, default=str).encode("utf-8") + b"\n")
                child.process.stdin.flush()
            except OSError:  # it died just now: the wait below says how
                pass
            event = self._answer(child, request["id"])
        if event["type"] == "failed":
            raise _error(event)
        return event, result

    def _running_child(self) -> ChildProcess:
        if self._child is not None and self._child.alive:
            return self._child
        self._stop_child()
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="ember-template-"))
        child = ChildProcess(child_command("engine.runtime.template_child"), label="chat-template",
                             limits=Limits(memory_bytes=self.memory_bytes)).start()
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            event = child.next_event(0.05)
            if event is not None and event.get("type") == "ready":
                break
            if child.finished or time.monotonic() > deadline:
                death = child.death()
                child.stop(timeout=STOP_TIMEOUT_S)
                raise jinja2.TemplateError("Ember's template process could not start"
                                           f" ({death.reason if death else 'no answer'})")
        self._child = child
        return child

    def _answer(self, child: ChildProcess, request_id: int) -> dict:
        deadline = time.monotonic() + self.deadline_s
        while True:
            event = child.next_event(0.01)
            if event is not None and event.get("id") == request_id:
                return event
            if child.finished:
                child.wait(1.0)
                death = child.death()
                self._stop_child()
                raise TemplateStopped(f"the chat template's process stopped: "
                                           f"{death.reason if death else 'it exited'}")
            if time.monotonic() > deadline:
                self._stop_child()
                raise TemplateTimeout(f"the chat template took longer than {self.deadline_s:g} s to render "
                                      "and was stopped")

    def _stop_child(self) -> None:
        if self._child is not None:
            self._child.stop(timeout=STOP_TIMEOUT_S)
            self._child = None


def _error(event: dict) -> jinja2.TemplateError:
    message = str(event.get("message", "the chat template failed"))
    kind = event.get("kind")
    if kind == "security":
        return SecurityError(message)
    return TemplateStopped(message) if kind in ("too_long", "memory") else jinja2.TemplateError(message)


_shared: TemplateProcess | None = None
_shared_lock = threading.Lock()


def shared_template_process() -> TemplateProcess:
    """The process's one template child (started at the first template, stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = TemplateProcess()
            atexit.register(_shared.close)
        return _shared
