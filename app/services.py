"""The engine objects of one window, built once and passed to whoever needs them (no globals).

The UI thread uses `conn` (quick SQL only: a listing, an insert). A worker opens its own connection
with `connect()`; SQLite's WAL mode lets it write a streaming reply while the UI thread reads. The
running model processes are in `hosts`, by role (chat, embedding); `embedder` starts the embedding
host when indexing or a question first needs it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.chat.conversation import Conversation
from engine.library.library import Library
from engine.paths import EmberPaths
from engine.rag.embedder import Embedder
from engine.runtime.registry import HostRegistry, LoadedModel
from engine.store.chats import ChatRepository
from engine.store.db import connect


class Services:
    def __init__(self, paths: EmberPaths) -> None:
        self.paths = paths.ensure()
        self.conn = connect(self.paths.db)  # the UI thread's connection
        self.chats = ChatRepository(self.conn)
        self.conversation = Conversation(self.paths.db)
        self.hosts = HostRegistry()
        self.embedder = Embedder(self.hosts, self.paths.logs)  # the embedding host, started on first need
        self._retriever = None
        self.recovery = None  # engine.store.recovery.RecoveryReport when ember.db was damaged at this start
        self.settings_notes: list[str] = []  # what was done at this start with a settings file Ember could not use

    @property
    def chat_model(self) -> LoadedModel | None:
        """The chat model when its process is running, else None."""
        return self.hosts.ready("chat")

    @property
    def retriever(self):
        """Retrieval for chat turns (engine.rag.grounding.ChatRetriever), made on first use: it brings
        numpy, which the window does not need to paint."""
        if self._retriever is None:
            from engine.rag.grounding import ChatRetriever

            self._retriever = ChatRetriever(self.paths.db, self.embedder)
        return self._retriever

    @property
    def log_path(self) -> Path:
        return self.paths.logs / "ember.log"

    def connect(self) -> sqlite3.Connection:
        """A new connection for a worker thread (the caller closes it)."""
        return connect(self.paths.db, migrate=False)

    def library(self, conn: sqlite3.Connection) -> Library:
        """The model library on the given connection (a worker's own, when it scans or inspects)."""
        return Library(self.paths, conn)

    def close(self) -> None:
        self.hosts.stop_all()
        self.conn.close()
