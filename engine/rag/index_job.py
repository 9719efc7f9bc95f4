"""One collection's index brought up to date, as the Documents page and `ember index` run it.

Everything a run needs, from the database path alone: the collection's sources become the list of
files, the collection's embedding model is started through the shared Embedder (or found running),
and index_collection does the rest. A source that is not there now (a folder on an unplugged drive)
keeps its documents in the index and is reported, instead of emptying the collection.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidInput
from engine.jobs import CancelToken, Progress
from engine.rag.embedder import Embedder
from engine.rag.embedding_prefixes import prefixes_for
from engine.rag.indexer import IndexReport, find_files, index_collection
from engine.rag.parser import DocumentParser
from engine.rag.tokens import HostTokenCounter
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository


@dataclass(frozen=True)
class CollectionFiles:
    """The files a collection's sources hold now, and the sources that are not there."""

    files: list[Path]
    missing_sources: list[str]
    kept: list[str]  # indexed documents under a missing source: left in the index


def collection_files(repo: DocumentsRepository, collection_id: int) -> CollectionFiles:
    sources = repo.list_sources(collection_id)
    missing = [s.path for s in sources if not Path(s.path).exists()]
    files = find_files(s.path for s in sources if s.path not in missing)
    kept = [d.path for d in repo.list_documents(collection_id)
            if any(_under(d.path, source) for source in missing)]
    return CollectionFiles(files, missing, kept)


def _under(path: str, source: str) -> bool:
    return path == source or path.startswith(source.rstrip("/\\") + "/") or path.startswith(source.rstrip("/\\") + "\\")


def embedding_model_of(repo: DocumentsRepository, collection_id: int) -> str:
    """The collection's embedding model file; refuses a collection without one or whose file is gone."""
    collection = repo.get_collection(collection_id)
    model = collection.embedding_model_path
    if not model:
        raise InvalidInput(f"{collection.name} has no embedding model yet.",
                           "Choose one in the collection's settings (the recommended one is downloaded on first use).")
    if not Path(model).is_file():
        raise InvalidInput(f"The embedding model of {collection.name} is missing: {model}.",
                           "Choose another one in the collection's settings; its documents are embedded again.")
    return model


def index_sources(db_path: Path, collection_id: int, embedder: Embedder, parser: DocumentParser,
                  cancel: CancelToken | None = None, *, retry_failed: bool = False
                  ) -> Generator[Progress, None, IndexReport]:
    """Index the collection's sources on this thread's own connection. Use as
    `report = yield from index_sources(...)`; progress is IndexProgress once files are being read."""
    cancel = cancel or CancelToken()
    conn = connect(db_path, migrate=False)
    try:
        repo = DocumentsRepository(conn)
        model = embedding_model_of(repo, collection_id)
        found = collection_files(repo, collection_id)
        yield Progress(0, None, "files", "Starting the embedding model…")
        client = yield from embedder.ensure(model, cancel)
        prefix = prefixes_for(model).document
        embed = client.embed
        if prefix:
            def embed(texts, cancel=None):  # the words this model family wants before a passage
                return client.embed([prefix + text for text in texts], cancel)
        return (yield from index_collection(repo, collection_id, found.files, parser.parse, embed,
                                            HostTokenCounter(client, cancel), cancel, retry_failed=retry_failed,
                                            keep=found.kept))
    finally:
        conn.close()
