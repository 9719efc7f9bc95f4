"""The download queue, read from the `.part.json` sidecars under EMBER_HOME/models.

Nothing about the queue lives in memory but which downloads run now (and their cancel tokens),
so a restart or a kill loses nothing: `to_resume()` names the downloads that were queued or
running. The caller runs several at once by giving each `run()` generator its own worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidInput, NotFound, UnsafePath
from engine.hub.download import DownloadOptions, disk_free, download
from engine.hub.sidecar import SIDECAR_SUFFIX, PartRecord, dest_of_sidecar, part_path, sidecar_path
from engine.jobs import CancelToken, Progress
from engine.paths import EmberPaths

# "downloading" or "verifying" with nothing running: the process died mid-way (a verifying part is checked again)
RESUMABLE = ("queued", "downloading", "verifying")


@dataclass(frozen=True)
class QueueItem:
    repo_id: str
    path: str
    revision: str
    dest: Path
    state: str
    done: int  # bytes on disk (the part's size, or the whole file when done)
    size: int | None
    error: str | None = None
    sha256: str | None = None
    running: bool = False
    updated_at: float = 0.0

    @property
    def key(self) -> str:
        return str(self.dest)


class DownloadQueue:
    def __init__(self, paths: EmberPaths, endpoint: str, *, token: str | bool | None = None,
                 options: DownloadOptions | None = None, disk_free=disk_free) -> None:
        self.paths, self.endpoint, self.token = paths, endpoint, token
        self.options, self.disk_free = options, disk_free
        self._lock = threading.Lock()
        self._running: dict[str, CancelToken] = {}
        self._removing: set[str] = set()

    def items(self) -> list[QueueItem]:
        """Every download the sidecars know of, oldest change first."""
        found = []
        if self.paths.models.is_dir():
            for sidecar in self.paths.models.rglob("*" + SIDECAR_SUFFIX):
                item = self._item(sidecar)
                if item is not None:
                    found.append(item)
        return sorted(found, key=lambda i: (i.updated_at, i.key))

    def get(self, key: str) -> QueueItem:
        item = self._item(sidecar_path(Path(key)))
        if item is None:
            raise NotFound(f"No download for {Path(key).name} in the queue.")
        return item

    def enqueue(self, repo_id: str, path: str, revision: str = "main", *, sha256: str | None = None,
                size: int | None = None) -> QueueItem:
        """Add a download in state `queued` (an existing unfinished one is kept as it is)."""
        dest = self.paths.model_destination(repo_id, path)
        if dest.is_file():
            raise InvalidInput(f"{dest.name} is already downloaded.", "Find it in the library.")
        sidecar = sidecar_path(dest)
        record = PartRecord.load(sidecar)
        if record is None or record.state == "done" or (record.repo, record.path) != (repo_id, path):
            dest.parent.mkdir(parents=True, exist_ok=True)
            PartRecord(repo_id, revision, path, sha256=sha256, size=size).save(sidecar)
        return self.get(str(dest))

    def run(self, key: str, cancel: CancelToken | None = None) -> Generator[Progress, None, Path | None]:
        """The download's generator, for one worker thread; `pause(key)` or `cancel` stops it (paused).

        It reads the sidecar when the worker starts it, under the lock `pause` and `remove` take: a
        download paused or removed after it was queued but before its worker got here does not start
        (returns None)."""
        dest, token = Path(key), cancel or CancelToken()
        with self._lock:
            if key in self._running:
                raise InvalidInput(f"{dest.name} is already downloading.")
            record = self._record(dest)
            if record is None or record.state == "paused":
                return None
            self._running[key] = token
        try:
            return (yield from download(record.repo, record.path, paths=self.paths, endpoint=self.endpoint,
                                        revision=record.revision, sha256=record.sha256, token=self.token,
                                        cancel=token, options=self.options, disk_free=self._free_for(key)))
        finally:
            with self._lock:
                self._running.pop(key, None)
                removing = key in self._removing
                self._removing.discard(key)
            if removing:
                self._delete(dest)

    def is_running(self, key: str) -> bool:
        with self._lock:
            return key in self._running

    def pause(self, key: str) -> None:
        """Stop a running download (its part is kept), or mark a waiting one paused in its sidecar, where
        `run` looks before it starts."""
        with self._lock:
            token = self._running.get(key)
            if token is None:
                record = PartRecord.load(sidecar_path(Path(key)))
                if record is not None and record.state in ("queued", "downloading", "failed"):
                    record.save(sidecar_path(Path(key)), state="paused")
        if token is not None:
            token.cancel()

    def resume(self, key: str) -> QueueItem:
        """Mark a paused or failed download queued again (so `to_resume()` names it); the caller then
        starts `run(key)` on a worker. The part on disk is kept: the download continues from it."""
        with self._lock:
            record = PartRecord.load(sidecar_path(Path(key)))
            if record is not None and record.state in ("paused", "failed"):
                record.save(sidecar_path(Path(key)), state="queued", error=None)
        return self.get(key)

    def remove(self, key: str) -> None:
        """Cancel and forget a download: its part and sidecar are deleted (now, or when its worker stops)."""
        with self._lock:
            token = self._running.get(key)
            if token is not None:
                self._removing.add(key)
            else:
                self._delete(Path(key))  # under the lock: a `run` starting now finds no sidecar
        if token is not None:
            token.cancel()

    def to_resume(self) -> list[QueueItem]:
        """Downloads to restart after a restart: queued ones and those cut off while running."""
        return [i for i in self.items() if i.state in RESUMABLE and not i.running]

    def _free_for(self, key: str):
        """Free space as one download sees it: what the disk has minus what the others still need."""
        def free(path: Path) -> int:
            others = sum(max(0, (i.size or 0) - i.done) for i in self.items() if i.running and i.key != key)
            return self.disk_free(path) - others

        return free

    def _delete(self, dest: Path) -> None:
        part_path(dest).unlink(missing_ok=True)
        sidecar_path(dest).unlink(missing_ok=True)

    def _record(self, dest: Path) -> PartRecord | None:
        """The sidecar of `dest`, or None when there is none or it names another place (ignored)."""
        record = PartRecord.load(sidecar_path(dest))
        if record is None:
            return None
        try:
            return record if self.paths.model_destination(record.repo, record.path) == dest else None
        except UnsafePath:
            return None

    def _item(self, sidecar: Path) -> QueueItem | None:
        dest = dest_of_sidecar(sidecar)
        record = self._record(dest)
        if record is None:
            return None
        part = part_path(dest)
        done = part.stat().st_size if part.exists() else (dest.stat().st_size if dest.is_file() else 0)
        return QueueItem(record.repo, record.path, record.revision, dest, record.state, done, record.size,
                         record.error, record.sha256, self.is_running(str(dest)), record.updated_at)
