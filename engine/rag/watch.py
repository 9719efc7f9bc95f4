"""What a collection's folders hold that its index does not: new, changed and deleted files.

The Documents page asks this every few seconds while Ember runs (a poll, not OS notifications: it
works the same on every platform and on network drives, and a scan of a few thousand files' sizes
and times takes milliseconds). Cheap by design: it compares sizes and modification times with the
rows, and hashes nothing; the indexer then decides by content. Work left by a stopped or killed run
(rows still `pending` or `changed`) counts too, so indexing continues where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.rag.index_job import collection_files
from engine.rag.indexer import file_stats
from engine.store.documents_repo import DocumentsRepository


@dataclass(frozen=True)
class PendingWork:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # on disk now differs from the index, or left half done
    deleted: list[str] = field(default_factory=list)
    missing_sources: list[str] = field(default_factory=list)  # added folders or files that are not there now

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.deleted)

    @property
    def summary(self) -> str:
        parts = [f"{len(items)} {word}" for items, word in
                 ((self.new, "new"), (self.changed, "changed"), (self.deleted, "deleted")) if items]
        return ", ".join(parts) + (" files" if parts else "")


def pending_work(repo: DocumentsRepository, collection_id: int) -> PendingWork:
    found = collection_files(repo, collection_id)
    stats = file_stats(found.files)
    rows = {d.path: d for d in repo.list_documents(collection_id)}
    new, changed = [], []
    for path, (size, mtime) in stats.items():
        row = rows.get(path)
        if row is None:
            new.append(path)
        elif row.status in ("pending", "changed") or (row.size, row.mtime) != (size, mtime):
            changed.append(path)
    present = set(stats) | set(found.kept)
    deleted = [path for path in rows if path not in present]
    return PendingWork(new, changed, deleted, found.missing_sources)
