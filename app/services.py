"""The engine objects of one window, built once and passed to whoever needs them (no globals).

The UI thread uses `conn` (quick SQL only: a listing, an insert). A worker opens its own connection
with `connect()`; SQLite's WAL mode lets it write a streaming reply while the UI thread reads.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from engine.chat.conversation import Conversation, ModelIdentity
from engine.library.library import Library, LibraryEntry
from engine.paths import EmberPaths
from engine.runtime.supervisor import RuntimeHost
from engine.store.chats import ChatRepository
from engine.store.db import connect


@dataclass
class LoadedModel:
    """The chat model in use now: its host process and what provenance records about it."""

    host: RuntimeHost | None = None
    entry: LibraryEntry | None = None
    identity: ModelIdentity | None = None
    # replies written before the model's SHA-256 was known; filled in when the hash arrives
    unhashed_replies: list[int] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.host is not None and self.host.alive

    @property
    def context_length(self) -> int | None:
        if self.host is None:
            return None
        return int(self.host.info.get("n_ctx") or self.host.settings.context_length)


class Services:
    def __init__(self, paths: EmberPaths) -> None:
        self.paths = paths.ensure()
        self.conn = connect(self.paths.db)  # the UI thread's connection
        self.chats = ChatRepository(self.conn)
        self.conversation = Conversation(self.paths.db)
        self.model = LoadedModel()

    @property
    def log_path(self) -> Path:
        return self.paths.logs / "ember.log"

    def connect(self) -> sqlite3.Connection:
        """A new connection for a worker thread (the caller closes it)."""
        return connect(self.paths.db, migrate=False)

    def library(self, conn: sqlite3.Connection) -> Library:
        """The model library on the given connection (a worker's own, when it scans or inspects)."""
        return Library(self.paths, conn)

    def stop_model(self) -> None:
        host, self.model = self.model.host, LoadedModel()
        if host is not None:
            host.stop()

    def close(self) -> None:
        self.stop_model()
        self.conn.close()
