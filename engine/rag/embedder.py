"""The embedding model's process, shared by whoever needs vectors: the indexer, chat retrieval, the bench.

Started on first need and kept (loading takes a second or two; a question should not wait for it
each time), replaced when another model is asked for, registered in the HostRegistry under the role
"embedding" so that the app stops it with the others. A lock makes two workers that need it at once
(indexing and a chat question) share one process instead of starting two.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from engine.errors import Cancelled
from engine.jobs import CancelToken, Progress
from engine.runtime.client import HostClient
from engine.runtime.registry import HostRegistry, LoadedModel
from engine.runtime.supervisor import HostSettings, RuntimeHost

EMBEDDING_CONTEXT = 2048  # the host caps it at the model's trained context
ROLE = "embedding"


class Embedder:
    def __init__(self, registry: HostRegistry, log_dir: Path | None = None, threads: int | None = None) -> None:
        self.registry = registry
        self.log_dir = log_dir
        self.threads = threads
        self._lock = threading.Lock()

    def running(self, model_path: str | Path) -> LoadedModel | None:
        """The embedding host if it runs this model file, else None."""
        loaded = self.registry.ready(ROLE)
        return loaded if loaded is not None and loaded.path == str(Path(model_path)) else None

    def ensure(self, model_path: str | Path, cancel: CancelToken | None = None) -> Iterator[Progress]:
        """Make sure this model's host runs (start it, or replace another model's); returns its client.
        Use as `client = yield from embedder.ensure(path, cancel)`."""
        path = str(Path(model_path))
        with self._lock:
            loaded = self.running(path)
            if loaded is None:
                host = RuntimeHost(HostSettings(model_path=path, context_length=EMBEDDING_CONTEXT, gpu_layers=0,
                                                threads=self.threads, role=ROLE), log_dir=self.log_dir)
                try:
                    yield from host.start(cancel)
                except BaseException:
                    host.stop()
                    raise
                if not host.alive:  # cancelled while loading
                    host.stop()
                    raise Cancelled("Loading the embedding model was stopped.")
                loaded = LoadedModel(ROLE, host, path)
                previous = self.registry.put(loaded)
                if previous is not None:
                    previous.host.stop()
            return loaded.host.client()

    def client(self, model_path: str | Path, cancel: CancelToken | None = None) -> HostClient:
        """`ensure` without the progress (for the CLI and the tests)."""
        events = self.ensure(model_path, cancel)
        try:
            while True:
                next(events)
        except StopIteration as stop:
            return stop.value

    def stop(self) -> None:
        loaded = self.registry.take(ROLE)
        if loaded is not None:
            loaded.host.stop()
