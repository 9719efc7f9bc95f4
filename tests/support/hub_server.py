"""A real HTTP server on 127.0.0.1 standing in for the Hugging Face Hub, with switches for faults.

It answers what huggingface_hub and Ember ask: `/api/models` (search, filter, sort, limit, pages),
`/api/models/{repo}[/revision/{rev}]` (siblings with sizes and `lfs.sha256` when `blobs=true`),
`/api/models/{repo}/tree/{rev}[/{path}]`, and `/{repo}/resolve/{rev}/{path}` (HEAD and GET).
As on the real Hub, an LFS file answers `302` (or 307) to a CDN on another origin (`localhost`
instead of `127.0.0.1`, same port) with `X-Linked-Etag`, `X-Linked-Size` and `X-Repo-Commit`;
small files are served directly. Bytes support `Range` (206 + `Content-Range`).

Faults (`hub.faults`) and counters (`hub.stats`) can be set per test; `stop()` leaves no thread.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.support.hub_routes import Routes

CHUNK = 256 * 1024


@lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 2**20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class HubFile:
    """A file of a repo: bytes in memory, a file on disk (streamed), or listing-only (declared size/sha)."""

    path: str
    data: bytes | None = None
    source: Path | None = None
    declared_size: int | None = None
    declared_sha256: str | None = None
    lfs: bool = True

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.source is not None:
            return Path(self.source).stat().st_size
        return int(self.declared_size or 0)

    @property
    def sha256(self) -> str:
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        if self.source is not None:
            stat = Path(self.source).stat()
            return _file_digest(str(self.source), stat.st_size, stat.st_mtime_ns)
        return self.declared_sha256 or hashlib.sha256(self.path.encode()).hexdigest()

    @property
    def blob_id(self) -> str:
        """The git object id: of the LFS pointer for LFS files, of the content otherwise."""
        seed = f"pointer {self.sha256} {self.size}" if self.lfs else f"blob {self.sha256}"
        return hashlib.sha1(seed.encode()).hexdigest()

    def read(self, start: int, end: int):
        """Yield the bytes [start, end) in chunks (listing-only files yield a repeating pattern)."""
        if self.data is not None:
            for pos in range(start, end, CHUNK):
                yield self.data[pos:min(end, pos + CHUNK)]
        elif self.source is not None:
            with open(self.source, "rb") as f:
                f.seek(start)
                left = end - start
                while left > 0 and (chunk := f.read(min(CHUNK, left))):
                    left -= len(chunk)
                    yield chunk
        else:
            for pos in range(start, end, CHUNK):
                yield bytes((i * 31 + 7) % 251 for i in range(pos, min(end, pos + CHUNK)))


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, HubFile] = field(default_factory=dict)
    card: str = ""
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2024-06-01T12:00:00.000Z"
    created_at: str = "2024-01-01T12:00:00.000Z"
    license: str | None = None
    tags: list[str] = field(default_factory=list)
    gated: bool = False

    @property
    def sha(self) -> str:
        return hashlib.sha1(f"commit {self.repo_id}".encode()).hexdigest()

    @property
    def author(self) -> str:
        return self.repo_id.split("/")[0]

    def all_files(self) -> dict[str, HubFile]:
        files = dict(self.files)
        if self.card and "README.md" not in files:
            text = self.card if not self.license else f"---\nlicense: {self.license}\n---\n{self.card}"
            files["README.md"] = HubFile("README.md", data=text.encode(), lfs=False)
        return files


@dataclass
class Faults:
    """What goes wrong. `*_times` is how many responses get the fault (None: all of them)."""

    drop_after: int | None = None  # close the connection after this many body bytes of a file
    drop_times: int | None = 1
    stall_after: int | None = None  # then send nothing for `stall_s` seconds
    stall_s: float = 0.0
    stall_times: int | None = 1
    wrong_bytes: bool = False  # same length, other bytes (the published sha256 no longer matches)
    status: int | None = None  # answer file requests (resolve and CDN, HEAD and GET) with this status
    status_times: int | None = None
    api_status: int | None = None  # answer /api/ requests with this status
    rate: float | None = None  # bytes per second for file bodies
    reset: bool = False  # a drop is a TCP reset (RST), not a clean close
    ignore_range: bool = False  # answer a Range request with 200 and the whole file
    length_delta: int = 0  # Content-Length says this many bytes more (or fewer) than the body has
    length_times: int | None = 1
    extra_bytes: int = 0  # send this many bytes past the end of the file (the Content-Length counts them)


@dataclass
class Stats:
    bytes_served: int = 0
    ranges: list[str | None] = field(default_factory=list)  # the Range header of every file GET
    requests: list[tuple[str, str]] = field(default_factory=list)

    @property
    def range_starts(self) -> list[int]:
        return [int(r.split("=")[1].split("-")[0]) if r else 0 for r in self.ranges]


class StandInHub:
    """`with StandInHub() as hub: hub.add_repo(...); HF_ENDPOINT=hub.url`."""

    def __init__(self, cdn_host: str = "localhost", lfs_redirect: int = 302) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.faults = Faults()
        self.stats = Stats()
        self.cdn_host = cdn_host
        self.lfs_redirect = lfs_redirect
        self.page_size = 1000
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- content -----------------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes | Path | HubFile] | None = None, **fields) -> HubRepo:
        repo = HubRepo(repo_id, **fields)
        for path, value in (files or {}).items():
            if isinstance(value, HubFile):
                repo.files[path] = value
            elif isinstance(value, bytes):
                repo.files[path] = HubFile(path, data=value)
            else:
                repo.files[path] = HubFile(path, source=Path(value))
        self.repos[repo_id] = repo
        return repo

    def reset(self) -> None:
        """No faults, zero counters."""
        with self._lock:
            self.faults = Faults()
            self.stats = Stats()

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "the hub is not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandInHub:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="stand-in-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, break open connections and stalls, and join every thread."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()  # joins the handler threads
        self._thread.join(timeout=10)

    def __enter__(self) -> StandInHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- used by the handler ----------------------------------------------------------------------
    def take(self, name: str) -> bool:
        """Whether this response gets fault `name`; counts it down."""
        with self._lock:
            times = getattr(self.faults, f"{name}_times")
            if times is None:
                return True
            if times <= 0:
                return False
            setattr(self.faults, f"{name}_times", times - 1)
            return True

    def record(self, **changes) -> None:
        with self._lock:
            for key, value in changes.items():
                if key == "bytes_served":
                    self.stats.bytes_served += value
                else:
                    getattr(self.stats, key).append(value)

    def find_blob(self, sha256: str) -> HubFile | None:
        for repo in self.repos.values():
            for f in repo.all_files().values():
                if f.lfs and f.sha256 == sha256:
                    return f
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins them: nothing is left behind
    block_on_close = True

    def __init__(self, hub: StandInHub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        pass  # a client that went away is normal here (cancel, kill, drop)


class _Handler(Routes, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args) -> None:  # quiet
        pass

    @property
    def hub(self) -> StandInHub:
        return self.server.hub

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _dispatch(self, head: bool) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.hub.record(requests=(self.command, self.path))
        try:
            self.route([unquote(p) for p in url.path.split("/")[1:]], query, head)
        except (ConnectionError, OSError):
            self.close_connection = True

    # -- responses used by the routes -------------------------------------------------------------
    def send_json(self, value, status: int = 200, headers: dict | None = None, head: bool = False) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, val in (headers or {}).items():
            self.send_header(name, val)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_hub_error(self, status: int, code: str | None = None, message: str = "", head: bool = False) -> None:
        headers = {"X-Error-Code": code} if code else {}
        if message:
            headers["X-Error-Message"] = message
        self.send_json({"error": message or f"HTTP {status}"}, status, headers, head)

    def cdn_url(self, sha256: str) -> str:
        return f"http://{self.hub.cdn_host}:{self.hub.port}/cdn-lfs/{sha256}?sig={quote(sha256[:8])}"
