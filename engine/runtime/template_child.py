"""The template child: `python -m engine.runtime.template_child`, started by TemplateProcess (template_process.py).

A GGUF's chat template is code from the model's author. The Jinja sandbox stops it reaching Python's
internals, but not from looping for ever, or from asking for a billion characters in one step
(`'x' * 10**9`, `'x'.ljust(10**9)`, a constant Jinja folds while compiling), which no deadline in
the same process can interrupt. So templates are compiled and rendered here, under a memory limit
set by the parent, and the parent kills this process when a render runs past its deadline.

Protocol (the supervisor's, engine/runtime/child.py):
- stdin: one request a line: {"id": 1, "source": "...", "context": {...}, "result": "/tmp/x/1.txt"}
  renders `source` with `context` into the `result` file; without "context" it only compiles.
- stdout: {"type": "ready"} once, then per request {"type": "compiled" | "rendered", "id"} or
  {"type": "failed", "id", "kind", "message"} (kind: syntax, security, template, too_long, memory, error).
The text travels in a file: the supervisor cuts stdout lines over 256 KiB, and a prompt may be longer.
"""

from __future__ import annotations

import sys

import jinja2
from jinja2.sandbox import SecurityError

from engine.runtime.child_protocol import emit, requests_from_parent
from engine.runtime.template_env import chat_template_environment

MAX_OUTPUT_CHARS = 16_000_000  # four times the text of a million-token context; a prompt is never longer
CACHE_SIZE = 8  # compiled templates kept (a host has one; the tests use many)


class OutputTooLong(Exception):
    pass


def counted_render(template: jinja2.Template, context: dict, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Render piece by piece and stop as soon as the text passes `limit` characters."""
    pieces, total = [], 0
    for piece in template.generate(**context):
        total += len(piece)
        if total > limit:
            raise OutputTooLong(f"the chat template's text passed {limit:,} characters and was stopped")
        pieces.append(piece)
    return "".join(pieces)


class Templates:
    """Compiled templates by their source, the most recent few."""

    def __init__(self) -> None:
        self.env = chat_template_environment()
        self.compiled: dict[str, jinja2.Template] = {}

    def get(self, source: str) -> jinja2.Template:
        template = self.compiled.pop(source, None) or self.env.from_string(source)
        self.compiled[source] = template
        while len(self.compiled) > CACHE_SIZE:
            self.compiled.pop(next(iter(self.compiled)))
        return template


def handle(request: dict, templates: Templates) -> dict:
    answer = {"id": request.get("id")}
    try:
        template = templates.get(str(request.get("source", "")))
        if request.get("context") is None:
            return {**answer, "type": "compiled"}
        text = counted_render(template, request["context"])
        with open(request["result"], "w", encoding="utf-8", errors="surrogatepass") as file:
            file.write(text)
        return {**answer, "type": "rendered", "chars": len(text)}
    except jinja2.TemplateSyntaxError as exc:
        return _failed(answer, "syntax", f"the chat template does not compile: {exc}")
    except SecurityError as exc:
        return _failed(answer, "security", str(exc))
    except jinja2.TemplateError as exc:  # raise_exception(...) in the template, an undefined name...
        return _failed(answer, "template", str(exc))
    except OutputTooLong as exc:
        return _failed(answer, "too_long", str(exc))
    except MemoryError:
        return _failed(answer, "memory", "the chat template needed more memory than Ember lets a template use and was stopped")
    except RecursionError:
        return _failed(answer, "error", "the chat template recurses without end")
    except Exception as exc:  # a template's TypeError, ZeroDivisionError...: its own failure, not the child's
        return _failed(answer, "error", f"{type(exc).__name__}: {exc}")


def _failed(answer: dict, kind: str, message: str) -> dict:
    return {**answer, "type": "failed", "kind": kind, "message": message}


def main() -> int:
    requests = requests_from_parent()
    templates = Templates()
    emit({"type": "ready"})
    for request in requests:
        emit(handle(request, templates))


if __name__ == "__main__":
    sys.exit(main())
