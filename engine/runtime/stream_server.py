"""Ember's own chat stream (`POST /ember/chat`), served from plain threads beside the host's asyncio server.

Why a second, small server: under uvicorn the generation thread hands every batch of text to the
event loop, and on a small machine waking that loop and passing the batch through the ASGI stack
costs 0.3 to 0.4 ms of CPU a batch, taken from llama.cpp's own threads (benchmarks/generation.py
prints it). Here the thread that generates writes each batch to the socket itself, one `send`, and
the event loop sleeps through the reply. Other programs keep the OpenAI-compatible routes on the
main port.

The protocol is the one Ember's client reads (engine/runtime/client.py): the request is
`{"messages": [...], "sampling": {...}}` with the host's bearer token; the answer is
newline-delimited JSON, one `{"start": ...}` line as soon as the prompt is rendered and tokenized,
then `{"t": text, "n": tokens}` batches, then `{"done": stats}` or `{"error": message}`, and the
connection closes (HTTP/1.0: the reply ends with it). A client that closes or shuts down its side
stops the generation within one token. A reply holds the same model lock as the `/v1` routes, so it
never runs beside one of them on the same model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from engine.runtime.generation import run_generation
from engine.runtime.protocol import bearer_matches
from engine.runtime.routes import check_messages
from engine.sockets import shut_down

CHAT_PATH = "/ember/chat"
MAX_BODY = 32 * 1024 * 1024  # a conversation larger than this is refused (413)
LOCK_POLL_S = 0.05  # while waiting for the model, how often to look whether the client left


class StreamServer:
    """Listens on `address` (loopback) as soon as it is made; serves once `start` gives it the event loop
    that owns the model lock (connections that come before wait in the listen queue)."""

    def __init__(self, llama, renderer, token: str, model_lock: Callable, address: str = "127.0.0.1") -> None:
        self.llama = llama
        self.renderer = renderer
        self.token = token
        self.model_lock = model_lock  # an async context manager factory: llama-cpp-python's lock
        self.loop: asyncio.AbstractEventLoop | None = None
        handler = type("Handler", (_ChatHandler,), {"stream": self})
        server_class = _IPv6Server if ":" in address else ThreadingHTTPServer
        self.server = server_class((address, 0), handler, bind_and_activate=True)
        self.server.daemon_threads = True

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        threading.Thread(target=self.server.serve_forever, name="ember-stream", daemon=True).start()

    def reply(self, body: dict, connection: socket.socket, write: Callable[[bytes], object]) -> None:
        """Generate one reply on this thread, writing each event as a line, under the model lock."""
        stop = threading.Event()

        def emit(event: dict) -> None:
            if stop.is_set():
                return  # the client is gone: nobody reads what is left
            try:
                write((json.dumps(event) + "\n").encode())
            except OSError:
                stop.set()

        watcher = threading.Thread(target=_watch_for_close, args=(connection, stop), name="ember-stream-watch",
                                   daemon=True)
        watcher.start()
        try:
            with self._model_held(stop) as held:
                if held:
                    run_generation(self.llama, self.renderer, body, emit, stop.is_set)
        except Exception as exc:  # reported to the client; the host stays up
            emit({"error": f"{type(exc).__name__}: {exc}"})
        finally:
            stop.set()
            shut_down(connection)  # the reply is over: this also ends the watcher's read
            watcher.join(timeout=5)

    @contextlib.contextmanager
    def _model_held(self, stop: threading.Event):
        """Hold the asyncio-side model lock while this thread generates: a task on the event loop takes it
        and keeps it until the block ends. Yields False if the client left while waiting for it."""
        granted, release = threading.Event(), asyncio.Event()

        async def hold() -> None:
            async with self.model_lock():
                granted.set()
                await release.wait()

        future = asyncio.run_coroutine_threadsafe(hold(), self.loop)
        try:
            while not granted.wait(LOCK_POLL_S) and not stop.is_set() and not future.done():
                pass
            if future.done() and not granted.is_set():
                future.result()  # the lock task failed: say why
            yield granted.is_set() and not stop.is_set()
        finally:
            if granted.is_set():
                self.loop.call_soon_threadsafe(release.set)
            else:
                future.cancel()
            with contextlib.suppress(Exception):
                future.result(timeout=5)


def _watch_for_close(connection: socket.socket, stop: threading.Event) -> None:
    """Set `stop` when the client closes or shuts down its side (a cancel), or when the reply ends."""
    try:
        while connection.recv(4096):
            pass
    except OSError:
        pass
    stop.set()


class _ChatHandler(BaseHTTPRequestHandler):
    stream: StreamServer
    protocol_version = "HTTP/1.0"  # one reply per connection; it ends when the connection closes
    wbufsize = 0  # each write is one send: a batch reaches the client when it is written

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        if self.path != CHAT_PATH:
            return self._refuse(404, f"no route {self.path}; this port serves POST {CHAT_PATH}")
        if not bearer_matches(self.headers.get("Authorization", ""), self.stream.token):
            return self._refuse(401, "missing or wrong bearer token")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._refuse(411, "the request needs a Content-Length")
        if not 0 <= length <= MAX_BODY:
            return self._refuse(413, f"the request is larger than {MAX_BODY // (1024 * 1024)} MB")
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            return self._refuse(400, "the request body is not JSON")
        problem = check_messages(body)
        if problem:
            return self._refuse(400, problem)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        self.stream.reply(body, self.connection, self.wfile.write)

    def _refuse(self, status: int, message: str) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        pass  # the host logs nothing per request (the conversation is the user's)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
