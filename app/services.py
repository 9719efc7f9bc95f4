"""The engine objects of one window, built once and passed to whoever needs them (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.chat.conversation import Conversation, ModelIdentity
from engine.hub.library import Library, LibraryEntry
from engine.paths import EmberPaths
from engine.runtime.supervisor import RuntimeHost
from engine.store.chats import ChatRepository
from engine.store.db import connect


@dataclass
class LoadedModel:
    """The model in use now: its host process and what provenance records about it."""

    host: RuntimeHost | None = None
    entry: LibraryEntry | None = None
    identity: ModelIdentity | None = None

    @property
    def ready(self) -> bool:
        return self.host is not None and self.host.alive


@dataclass
class Services:
    paths: EmberPaths
    conn: object = field(init=False)
    chats: ChatRepository = field(init=False)
    conversation: Conversation = field(init=False)
    library: Library = field(init=False)
    model: LoadedModel = field(default_factory=LoadedModel)

    def __post_init__(self) -> None:
        self.conn = connect(self.paths.db)  # the UI thread's connection; workers open their own
        self.chats = ChatRepository(self.conn)
        self.conversation = Conversation(self.paths.db)
        self.library = Library(self.paths, self.conn)

    def close(self) -> None:
        if self.model.host is not None:
            self.model.host.stop()
            self.model.host = None
        self.conn.close()
