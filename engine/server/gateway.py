"""Ember's local API server: the loaded models, OpenAI-compatible, for other programs.

    gateway = Gateway(registry, GatewaySettings(port=8080, api_key=key), on_request=log.append)
    gateway.start()          # serves until gateway.stop()

It listens on the user's port and passes each request on to the model process of the right role
(chat: `/v1/chat/completions`, `/v1/completions`; embedding: `/v1/embeddings`), whose own server
(llama-cpp-python's) does the work, so other programs get the very generation path Ember's chat
uses. What the gateway adds: one API key for everything (the model processes keep their private
tokens), model names a person would type instead of file paths, loopback only unless the user
chose the network, a fair queue per model, and a record of each request for the Server panel (time,
endpoint, tokens, duration, status; never the key, never the text). The models can be loaded,
switched or unloaded while it runs: each request looks up the registry when it arrives.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from engine.errors import InvalidInput
from engine.runtime.protocol import bearer_matches
from engine.runtime.registry import HostRegistry, LoadedModel
from engine.server.fair_queue import FairQueue

log = logging.getLogger(__name__)

ROUTES = {"/v1/chat/completions": "chat", "/v1/completions": "chat", "/v1/embeddings": "embedding"}
MAX_BODY = 32 * 1024 * 1024  # a request body larger than this is refused (413)
QUEUE_TIMEOUT_S = 600.0
UPSTREAM_TIMEOUT_S = 600.0


def new_api_key() -> str:
    return "ember-" + secrets.token_urlsafe(24)


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def public_name(loaded: LoadedModel) -> str:
    """The name other programs use for a loaded model: its file name without `.gguf`, never a path."""
    return Path(loaded.path).stem


NETWORK_ADDRESS = "0.0.0.0"  # every interface: other computers may connect (with the key)


@dataclass(frozen=True)
class GatewaySettings:
    port: int = 8080
    api_key: str = field(default_factory=new_api_key, repr=False)
    address: str = "127.0.0.1"  # where it listens; loopback unless the user chose the network

    @property
    def network(self) -> bool:
        """Other computers may connect (the address is not a loopback one)."""
        return not is_loopback(self.address)

    def checked(self) -> GatewaySettings:
        if not 0 <= self.port <= 65535:
            raise InvalidInput(f"{self.port} is not a port number.", "Use a port from 1024 to 65535.")
        if len(self.api_key) < 16:
            raise InvalidInput("The API key is too short to keep others out.", "Use at least 16 characters.")
        return self


@dataclass(frozen=True)
class RequestRecord:
    """One request as the Server panel lists it."""

    started: float  # time.time()
    client: str  # the client's address
    method: str
    endpoint: str
    model: str | None
    status: int
    tokens: int | None  # completion tokens (streamed too, from the usage chunk), or prompt tokens of an embedding
    seconds: float
    waited_s: float  # of which in the queue
    error: str | None = None


class Gateway:
    def __init__(self, registry: HostRegistry, settings: GatewaySettings,
                 on_request: Callable[[RequestRecord], None] | None = None,
                 on_queue: Callable[[dict[str, tuple[bool, list[str]]]], None] | None = None) -> None:
        self.registry = registry
        self.settings = settings.checked()
        self.on_request = on_request or (lambda _record: None)
        self.on_queue = on_queue or (lambda _queues: None)
        self.queues = {"chat": FairQueue(), "embedding": FairQueue()}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind the port (an OSError says why it cannot, e.g. in use) and serve on a thread."""
        handler = type("Handler", (_Handler,), {"gateway": self})
        server = _ClosingServer((self.settings.address, self.settings.port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="ember-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self.settings.port

    def base_url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/v1"

    # --- what is served -------------------------------------------------------------------------------
    def serving(self, role: str) -> LoadedModel | None:
        """The model that answers this role's requests: for chat, the model loaded for the server alone
        when there is one (the Server page), else the Chat page's."""
        if role == "chat":
            return self.registry.ready("served") or self.registry.ready("chat")
        return self.registry.ready(role)

    def models(self) -> list[dict]:
        listed = []
        for role in ("chat", "embedding"):
            loaded = self.serving(role)
            if loaded is not None:
                listed.append({"id": public_name(loaded), "object": "model", "owned_by": "ember", "role": role,
                               "created": 0})
        return listed

    def queue_state(self) -> dict[str, tuple[bool, list[str]]]:
        return {role: queue.snapshot() for role, queue in self.queues.items()}


class _Handler(BaseHTTPRequestHandler):
    gateway: Gateway  # set on the subclass made in Gateway.start
    protocol_version = "HTTP/1.1"
    server_version = "Ember"

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        """Silent: requests are recorded for the panel instead (and the key never reaches a log)."""

    # --- routing ------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        self._serve(lambda: self._get())

    def do_POST(self) -> None:  # noqa: N802
        self._serve(lambda: self._post())

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._serve(lambda: self._reply(204, b"", "text/plain"))

    def _serve(self, body) -> None:
        self.record = {"started": time.time(), "model": None, "tokens": None, "waited_s": 0.0, "error": None}
        self.status_sent = 0
        t0 = time.monotonic()
        try:
            if not self._allowed():
                return
            body()
        except (BrokenPipeError, ConnectionResetError):
            self.status_sent = self.status_sent or 499
            self.record["error"] = "the client went away"
            self.close_connection = True
        except Exception as exc:  # a bug must not take the server down; the client gets a 500
            log.exception("gateway request failed")
            if not self.status_sent:
                self._error(500, f"Ember could not answer: {exc}", "server_error")
        finally:
            self.gateway.on_request(RequestRecord(
                started=self.record["started"], client=self.client_address[0], method=self.command,
                endpoint=self.path.split("?")[0], model=self.record["model"], status=self.status_sent,
                tokens=self.record["tokens"], seconds=time.monotonic() - t0, waited_s=self.record["waited_s"],
                error=self.record["error"]))

    def _allowed(self) -> bool:
        if not self.gateway.settings.network and not is_loopback(self.client_address[0]):
            self._error(403, "This Ember serves this computer only.",
                        "permission_error", hint="Turn on 'Other computers may connect' in Ember's Server panel.")
            return False
        if not bearer_matches(self.headers.get("Authorization", ""), self.gateway.settings.api_key):
            self._error(401, "Missing or wrong API key.", "invalid_api_key",
                        hint="Send 'Authorization: Bearer <key>' with the key shown in Ember's Server panel.")
            return False
        return True

    def _get(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/models":
            self._json(200, {"object": "list", "data": self.gateway.models()})
        elif path.startswith("/v1/models/"):
            wanted = path.rsplit("/", 1)[1]
            found = [m for m in self.gateway.models() if m["id"] == wanted]
            if found:
                self._json(200, found[0])
            else:
                self._error(404, f"No model named {wanted!r} is loaded.", "model_not_found")
        else:
            self._error(404, f"{path} is not served here.", "not_found",
                        hint="Ember serves /v1/models, /v1/chat/completions, /v1/completions and /v1/embeddings.")

    def _post(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        role = ROUTES.get(path)
        if role is None:
            self._error(404, f"{path} is not served here.", "not_found",
                        hint="Ember serves /v1/models, /v1/chat/completions, /v1/completions and /v1/embeddings.")
            return
        request = self._read_json()
        if request is None:
            return
        loaded = self.gateway.serving(role)
        if loaded is None:
            hint = ("Load a chat model in Ember (the Chat page) and try again." if role == "chat" else
                    "Load an embedding model in Ember (ask a question of a collection) and try again.")
            self._error(503, f"No {role} model is loaded in Ember.", "model_not_loaded", hint=hint)
            return
        name = public_name(loaded)
        wanted = request.get("model")
        if wanted not in (None, "", name):
            self._error(404, f"No model named {wanted!r} is loaded; the {role} model is {name!r}.",
                        "model_not_found")
            return
        request["model"] = name  # the upstream server echoes it: the reply names the model, not its path
        if not _translate_response_format(request):
            self._error(400, "response_format json_schema needs a 'schema' object.", "invalid_request_error")
            return
        self.record["model"] = name
        arrived = time.monotonic()
        try:
            with self.gateway.queues[role].turn(self.client_address[0], timeout=QUEUE_TIMEOUT_S):
                self.record["waited_s"] = time.monotonic() - arrived
                self.gateway.on_queue(self.gateway.queue_state())
                self._forward(loaded, path, request)
        except TimeoutError:
            self._error(429, "The model is busy with other requests.", "rate_limit_exceeded",
                        hint="Try again in a moment.")
        finally:
            self.gateway.on_queue(self.gateway.queue_state())

    # --- passing a request on ------------------------------------------------------------------------
    def _forward(self, loaded: LoadedModel, path: str, request: dict) -> None:
        host = loaded.host
        client_wants_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        if request.get("stream"):  # ask for the usage figures: the record counts tokens, not pieces
            request["stream_options"] = {**(request.get("stream_options") or {}), "include_usage": True}
        upstream = http.client.HTTPConnection(host.settings.host, host.port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            upstream.request("POST", path, body=json.dumps(request).encode(),
                             headers={"Authorization": f"Bearer {host.token}", "Content-Type": "application/json"})
            answer = upstream.getresponse()
            content_type = answer.getheader("Content-Type", "application/json")
            if request.get("stream") and answer.status == 200:
                self._stream(answer, content_type, client_wants_usage)
            else:
                data = answer.read()
                self.record["tokens"] = _tokens_of(data, path)
                if answer.status >= 400:
                    self.record["error"] = data[:300].decode("utf-8", "replace")
                self._reply(answer.status, data, content_type)
        except OSError as exc:
            if self.status_sent:
                raise
            self._error(502, f"The model process did not answer ({exc}).", "server_error",
                        hint="Ember restarts a model process that died; load the model again if it does not.")
        finally:
            upstream.close()

    def _stream(self, answer: http.client.HTTPResponse, content_type: str, client_wants_usage: bool) -> None:
        """Server-sent events, passed on event by event (chunked). The completion-token count for the record
        comes from the usage chunk the gateway asked the model process for; that chunk reaches the client
        only when the client asked for it too. Without one (an older route), the pieces that carry text."""
        self.send_response(200)
        self.status_sent = 200
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces, usage_tokens, partial = 0, None, b""
        while True:
            data = answer.read1(65536)
            if not data:
                break
            *events, partial = (partial + data).split(b"\n\n")
            out = []
            for event in events:
                tokens = _usage_tokens(event)
                if tokens is not None:
                    usage_tokens = tokens
                    if not client_wants_usage:
                        continue
                pieces += _carries_text(event)
                out.append(event + b"\n\n")
            if out:
                body = b"".join(out)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
                self.wfile.flush()
        if partial:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(partial), partial))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.record["tokens"] = usage_tokens if usage_tokens is not None else pieces

    # --- replies ---------------------------------------------------------------------------------------
    def _read_json(self) -> dict | None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._error(413 if length > MAX_BODY else 400, "The request body is missing or too large.",
                        "invalid_request_error")
            self.close_connection = True
            return None
        try:
            value = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as exc:
            self._error(400, f"The request body is not JSON ({exc}).", "invalid_request_error")
            return None
        if not isinstance(value, dict):
            self._error(400, "The request body must be a JSON object.", "invalid_request_error")
            return None
        return value

    def _json(self, status: int, value) -> None:
        self._reply(status, json.dumps(value).encode(), "application/json")

    def _error(self, status: int, message: str, kind: str, *, hint: str | None = None) -> None:
        self.record["error"] = message
        self.close_connection = True  # the request's body may be unread: this connection ends here
        text = f"{message} {hint}" if hint else message
        self._json(status, {"error": {"message": text, "type": kind, "code": status}})

    def _reply(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.status_sent = status
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(data)


class _ClosingServer(ThreadingHTTPServer):
    """A threading HTTP server that, when stopped, also ends the connections a client keeps open
    between requests: otherwise their handler threads would wait on them, and answer a request sent
    after the user switched the server off."""

    daemon_threads = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._open: set = set()
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            still_open = list(self._open)
        for connection in still_open:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler


def _translate_response_format(request: dict) -> bool:
    """OpenAI's `{"type": "json_schema", "json_schema": {"schema": ...}}` in the form llama-cpp-python's
    server takes (`{"type": "json_object", "schema": ...}`), which it turns into a llama.cpp grammar
    so the reply can only be JSON of that schema. False when the schema is missing."""
    wanted = request.get("response_format")
    if not isinstance(wanted, dict) or wanted.get("type") != "json_schema":
        return True
    schema = (wanted.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        return False
    request["response_format"] = {"type": "json_object", "schema": schema}
    return True


def _carries_text(line: bytes) -> bool:
    """A server-sent event with a piece of generated text (chat: delta content; completions: text)."""
    if not line.startswith(b"data: {"):
        return False
    for key in (b'"content": "', b'"text": "', b'"content":"', b'"text":"'):
        at = line.find(key)
        if at >= 0 and line[at + len(key):at + len(key) + 1] != b'"':
            return True
    return False


def _usage_tokens(event: bytes) -> int | None:
    """The completion tokens of a streamed usage chunk (`"choices": []` with `usage`), else None."""
    if b'"usage"' not in event or not event.startswith(b"data: {"):
        return None
    try:
        usage = json.loads(event[len(b"data: "):]).get("usage") or {}
    except ValueError:
        return None
    return usage.get("completion_tokens")


def _tokens_of(data: bytes, path: str) -> int | None:
    """Completion tokens of a finished answer (prompt tokens for embeddings), from its usage figures."""
    try:
        usage = json.loads(data).get("usage") or {}
    except (ValueError, AttributeError):
        return None
    key = "prompt_tokens" if path.endswith("embeddings") else "completion_tokens"
    return usage.get(key)
