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


@dataclass(frozen=True)
class IndexProgress(Progress):
    """A Progress in files, with what the Documents page shows beside the bar."""

    file: str = ""  # the name of the file being read or embedded ("" before the first)
    path: str = ""  # and its path
    chunks: int = 0  # chunks stored by this run so far
    chunks_per_s: float | None = None
    eta_s: float | None = None  # from the bytes still to read at the speed so far; None until measurable
    share_done: float | None = None  # of the bytes to index, how much is done (moves within a big file)
    failed: int = 0  # files that failed in this run or before (unchanged since)


def find_files(sources: Iterable[str | Path]) -> list[Path]:
    """Every supported document under the given files and folders (folders recursively, hidden ones
    skipped, symlink loops not followed), each once, in a stable order. A source that is not there
    gives nothing (the caller decides what its absence means)."""
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


def file_stats(files: Iterable[Path]) -> dict[str, tuple[int, float]]:
    """path -> (size, mtime) of each file that can still be stat'ed."""
    stats = {}
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        stats[str(path)] = (st.st_size, st.st_mtime)
    return stats


def index_collection(repo: DocumentsRepository, collection_id: int, files: list[Path], parse: Callable,
                     embed: Callable, count_tokens: Callable, cancel: CancelToken | None = None, *,
                     retry_failed: bool = False, keep: Iterable[str] = ()) -> Iterator[Progress]:
    """Bring the collection's index up to date with `files`; returns an IndexReport.

    parse(path, cancel) -> ParsedDocument (a DocumentParser's), embed(texts, cancel) -> vectors (a host
    client's), count_tokens(texts) -> token counts (the embedding model's). `keep`: documents to leave
    in the index although they are not among `files` (those of a folder that is not there right now:
    an unplugged drive must not empty the collection). Use as `report = yield from index_collection(...)`.

    A file whose size and modification time are those it had when it was indexed (or when it failed)
    is taken as unchanged without reading it, as git and rsync do; any other file is hashed, and one
    whose SHA-256 is the indexed one is unchanged too (its new time is recorded)."""
    cancel = cancel or CancelToken()
    started = time.monotonic()
    settings = repo.get_collection(collection_id).settings
    removed = repo.remove_missing(collection_id, [str(p) for p in files] + list(keep))
    stats = file_stats(files)
    failed: dict[str, str] = {str(p): "It cannot be read: it vanished or may not be opened." for p in files
                              if str(p) not in stats}
    same = repo.same_stat(collection_id, stats)
    unchanged = {path for path, status in same.items() if status == "indexed"}
    still_bad = {} if retry_failed else repo.failure_reasons(collection_id, [p for p, s in same.items() if s == "failed"])
    hashes = {}
    for path in files:
        key = str(path)
        if key in failed or key in unchanged or key in still_bad:
            continue
        try:
            hashes[key] = sha256_of(path)
        except OSError as exc:  # vanished or unreadable between the scan and now
            failed[key] = f"It cannot be read: {exc.strerror or exc}."
    for path in repo.unchanged_paths(collection_id, hashes):  # touched, not changed
        unchanged.add(path)
        repo.record_stat(collection_id, path, *stats[path])
    if not retry_failed:
        for path, reason in repo.known_failures(collection_id, hashes).items():
            still_bad[path] = reason
            repo.record_stat(collection_id, path, *stats[path])
    failed.update(still_bad)
    todo = [Path(p) for p in hashes if p not in unchanged and p not in still_bad]
    for path, reason in failed.items():
        if path in still_bad:
            continue  # its row says so already
        size, mtime = stats.get(path, (None, None))  # kept so that a watcher does not see it as changed again
        repo.upsert_document(collection_id, path, sha256=None, size=size, mtime=mtime, kind=document_kind(path),
                             status="failed", error=reason)
    repo.mark_to_index(collection_id, [str(p) for p in todo])
    parsed = indexed = chunks_total = 0
    total_bytes = sum(stats[str(p)][0] for p in todo) or 1
    bytes_done = 0.0

    def progress(number: int, path: Path | None, fraction_of_file: float = 0.0) -> IndexProgress:
        elapsed = time.monotonic() - started
        done_bytes = bytes_done + fraction_of_file * (stats[str(path)][0] if path is not None else 0)
        eta = elapsed * (total_bytes - done_bytes) / done_bytes if done_bytes > 0 and elapsed > 0.5 else None
        name = path.name if path is not None else ""
        message = (f"{name}: {number} of {len(todo)} files, {chunks_total} chunks" if path is not None else
                   f"{len(unchanged)} unchanged, {len(still_bad)} failed before, {len(todo)} to index")
        return IndexProgress(number, len(todo), "files", message, file=name, path=str(path or ""), chunks=chunks_total,
                             chunks_per_s=chunks_total / elapsed if elapsed > 0.5 else None, eta_s=eta,
                             share_done=min(1.0, done_bytes / total_bytes), failed=len(failed))

    yield progress(0, None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ember-parse-ahead") as ahead:
        pending: Future | None = ahead.submit(_parse, parse, todo[0], cancel) if todo else None
        for number, path in enumerate(todo):
            if cancel.cancelled:
                break
            result = pending.result()
            pending = ahead.submit(_parse, parse, todo[number + 1], cancel) if number + 1 < len(todo) else None
            parsed += 1
            size, mtime = stats[str(path)]
            if isinstance(result, EmberError):
                if cancel.cancelled:
                    break
                failed[str(path)] = result.message
                repo.upsert_document(collection_id, str(path), sha256=hashes[str(path)], size=size, mtime=mtime,
                                     kind=document_kind(path), status="failed", error=result.message)
            else:
                chunks = chunk_sections(result.sections, count_tokens, settings["chunk_tokens"],
                                        settings["overlap_tokens"])
                vectors = None
                for step in _embed_all(embed, chunks, cancel):
                    if isinstance(step, float):
                        yield progress(number, path, step)
                    else:
                        vectors = step
                if vectors is None:
                    break  # cancelled: this file stays as it was, the next run redoes it
                document = repo.upsert_document(collection_id, str(path), sha256=hashes[str(path)], size=size,
                                                mtime=mtime, kind=result.kind, pages=result.pages,
                                                status="pending")
                repo.replace_document_chunks(document.id, chunks, vectors)
                indexed += 1
                chunks_total += len(chunks)
            bytes_done += size
            yield progress(number + 1, path)
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


def _embed_all(embed: Callable, chunks: list[Chunk], cancel: CancelToken) -> Iterator[float | np.ndarray | None]:
    """The chunks' vectors in batches: yields the fraction done after each batch, then the vectors
    (None when cancelled)."""
    if not chunks:
        yield np.zeros((0, 0), dtype=np.float32)
        return
    batches = []
    for start in range(0, len(chunks), EMBED_BATCH):
        if cancel.cancelled:
            yield None
            return
        try:
            batches.append(embed([c.text for c in chunks[start:start + EMBED_BATCH]], cancel))
        except EmberError:
            if cancel.cancelled:
                yield None
                return
            raise
        yield min(1.0, (start + EMBED_BATCH) / len(chunks))
    yield np.concatenate(batches)
