"""Indexing a collection: find its files, skip the unchanged ones, parse, chunk, embed and store the rest.

A slow engine call: a generator of Progress with a CancelToken. It is incremental and resumable by
construction: a file's chunks, FTS rows and vectors are committed together when the file is done
(`replace_document_chunks`), so after a kill or a Stop the next run finds the finished files
unchanged by their SHA-256 and goes on with the rest. A deleted file leaves the index. A file that
cannot be read is marked failed with its reason and the others go on; it is not read again while
its content stays the same (a bad file stays bad), unless the caller asks to retry failures. Parsing runs in the parser's
child process one file ahead, so it overlaps the embedding of the current file (both cores busy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import EmberError
from engine.jobs import CancelToken, Progress
from engine.library.hashing import sha256_of
from engine.rag.chunker import Chunk, chunk_sections
from engine.rag.document import ParsedDocument
from engine.rag.formats import document_kind
from engine.store.documents_repo import DocumentsRepository

EMBED_BATCH = 32  # texts per embedding request (the host packs them into llama.cpp batches)


@dataclass(frozen=True)
class IndexReport:
    """What a run did, for the CLI and the tests (`parsed` counts files actually read)."""

    files: int
    unchanged: int
    parsed: int
    indexed: int
    failed: dict[str, str]  # path -> reason
    removed: list[str]
    chunks: int
    seconds: float


def find_files(sources: Iterable[str | Path]) -> list[Path]:
    """Every supported document under the given files and folders (folders recursively, hidden ones
    skipped, symlink loops not followed), each once, in a stable order."""
    found: dict[str, Path] = {}
    for source in sources:
        source = Path(source).expanduser()
        if source.is_dir():
            candidates = sorted(p for p in source.rglob("*")
                                if not any(part.startswith(".") for part in p.relative_to(source).parts))
        else:
            candidates = [source]
        for path in candidates:
            if path.is_file() and document_kind(path) is not None:
                found.setdefault(str(path.resolve()), path.resolve())
    return list(found.values())


def index_collection(repo: DocumentsRepository, collection_id: int, files: list[Path], parse: Callable,
                     embed: Callable, count_tokens: Callable, cancel: CancelToken | None = None, *,
                     retry_failed: bool = False) -> Iterator[Progress]:
    """Bring the collection's index up to date with `files`; returns an IndexReport.

    parse(path, cancel) -> ParsedDocument (a DocumentParser's), embed(texts, cancel) -> vectors (a host
    client's), count_tokens(texts) -> token counts (the embedding model's). Use as
    `report = yield from index_collection(...)`."""
    cancel = cancel or CancelToken()
    started = time.monotonic()
    settings = repo.get_collection(collection_id).settings
    removed = repo.remove_missing(collection_id, [str(p) for p in files])
    hashes = {}
    failed: dict[str, str] = {}
    for path in files:
        try:
            hashes[str(path)] = sha256_of(path)
        except OSError as exc:  # vanished or unreadable between the scan and now
            failed[str(path)] = f"It cannot be read: {exc.strerror or exc}."
    unchanged = repo.unchanged_paths(collection_id, hashes)
    still_bad = {} if retry_failed else repo.known_failures(collection_id, hashes)
    failed.update(still_bad)
    todo = [Path(p) for p in hashes if p not in unchanged and p not in still_bad]
    for path, reason in failed.items():
        if path in still_bad:
            continue  # its row says so already
        repo.upsert_document(collection_id, path, sha256=None, size=None, mtime=None, kind=document_kind(path),
                             status="failed", error=reason)
    parsed = indexed = chunks_total = 0
    yield Progress(0, len(todo), "files", f"{len(unchanged)} unchanged, {len(still_bad)} failed before, "
                                          f"{len(todo)} to index")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ember-parse-ahead") as ahead:
        pending: Future | None = ahead.submit(_parse, parse, todo[0], cancel) if todo else None
        for number, path in enumerate(todo):
            if cancel.cancelled:
                break
            result = pending.result()
            pending = ahead.submit(_parse, parse, todo[number + 1], cancel) if number + 1 < len(todo) else None
            parsed += 1
            stat = path.stat() if path.exists() else None
            if isinstance(result, EmberError):
                if cancel.cancelled:
                    break
                failed[str(path)] = result.message
                repo.upsert_document(collection_id, str(path), sha256=hashes[str(path)],
                                     size=stat.st_size if stat else None, mtime=stat.st_mtime if stat else None,
                                     kind=document_kind(path), status="failed", error=result.message)
            else:
                chunks = chunk_sections(result.sections, count_tokens, settings["chunk_tokens"],
                                        settings["overlap_tokens"])
                vectors = _embed_all(embed, chunks, cancel)
                if vectors is None:
                    break  # cancelled: this file stays as it was, the next run redoes it
                document = repo.upsert_document(collection_id, str(path), sha256=hashes[str(path)],
                                                size=stat.st_size if stat else None,
                                                mtime=stat.st_mtime if stat else None, kind=result.kind,
                                                pages=result.pages, status="pending")
                repo.replace_document_chunks(document.id, chunks, vectors)
                indexed += 1
                chunks_total += len(chunks)
            elapsed = time.monotonic() - started
            yield Progress(number + 1, len(todo), "files",
                           f"{path.name}: {number + 1} of {len(todo)} files, {chunks_total} chunks, "
                           f"{chunks_total / elapsed:.0f} chunks/s" if elapsed > 0 else path.name)
        if pending is not None:
            pending.cancel()
    return IndexReport(len(files), len(unchanged), parsed, indexed, failed, removed, chunks_total,
                       time.monotonic() - started)


def _parse(parse: Callable, path: Path, cancel: CancelToken) -> ParsedDocument | EmberError:
    """On the parse-ahead thread: the document, or the reason it cannot be read (never raises)."""
    try:
        return parse(path, cancel)
    except EmberError as error:
        return error


def _embed_all(embed: Callable, chunks: list[Chunk], cancel: CancelToken) -> np.ndarray | None:
    """The chunks' vectors in batches; None when cancelled."""
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    batches = []
    for start in range(0, len(chunks), EMBED_BATCH):
        if cancel.cancelled:
            return None
        try:
            batches.append(embed([c.text for c in chunks[start:start + EMBED_BATCH]], cancel))
        except EmberError:
            if cancel.cancelled:
                return None
            raise
    return np.concatenate(batches)
