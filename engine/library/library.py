"""The local model library: the starter model, downloads in EMBER_HOME/models, folders and files the user adds.

Each file is inspected once (the result is kept in ember.db by path, size and mtime). A file that
fails inspection stays listed with the reason, so the user sees why it cannot be used. A split
GGUF is one model (its first part), listed only once every part is there; `.part` files (downloads
in progress) are never models. The SHA-256 is computed lazily, or taken from the download's
verified sidecar.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from engine.config import load_settings, update_settings
from engine.errors import BadModelFile, InvalidInput
from engine.gguf.inspect import ModelInfo, inspect_gguf
from engine.gguf.splits import SPLIT_NAME, require_every_part, split_parts
from engine.hub.sidecar import PartRecord, part_path, sidecar_path
from engine.jobs import CancelToken, Progress
from engine.library.hashing import sha256_file
from engine.paths import EmberPaths, starter_model
from engine.store.models_repo import ModelRepository, ModelRow

FOLDERS_KEY = "model_folders"


@dataclass(frozen=True)
class LibraryEntry:
    path: str
    source: str  # hub, folder, starter, added
    info: ModelInfo | None
    error: str | None = None
    sha256: str | None = None
    repo_id: str | None = None
    measured_tps: float | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    def to_dict(self) -> dict:
        data = self.info.to_dict() if self.info else {"file_name": self.name}
        data.update(path=self.path, source=self.source, sha256=self.sha256, error=self.error, repo_id=self.repo_id)
        return data


def _is_model_file(path: Path) -> bool:
    if path.suffix.lower() != ".gguf" or not path.is_file():
        return False
    split = SPLIT_NAME.match(path.name)
    if not split:
        return True
    # later parts belong to the first; a split model counts once all its parts are there
    return int(split["part"]) == 1 and len(split_parts(path)) == int(split["total"])


def model_folders(paths: EmberPaths) -> list[Path]:
    """The folders the user added to the library (kept in settings.json)."""
    return [Path(p) for p in load_settings(paths.settings).get(FOLDERS_KEY, [], kind=list) if isinstance(p, str)]


def verified_sha256(path: Path) -> str | None:
    """The SHA-256 a finished download verified, if the file is still the one it wrote."""
    record = PartRecord.load(sidecar_path(path))
    if record is None or record.state != "done" or not record.sha256:
        return None
    stat = path.stat()
    return record.sha256 if record.size == stat.st_size and record.updated_at >= stat.st_mtime else None


class Library:
    def __init__(self, paths: EmberPaths, conn: sqlite3.Connection) -> None:
        self.paths = paths
        self.repo = ModelRepository(conn)

    def scan(self, folders: list[Path] | None = None, write: bool = True) -> list[LibraryEntry]:
        """Find every model, refresh the database, and return the entries (starter first).

        `folders`: extra folders to scan; by default the ones in settings (`add_folder`).
        `write=False`: only read the database (a listing while another process owns the home): rows
        that still describe their file are used, new files are inspected, nothing is stored."""
        if folders is None:
            folders = model_folders(self.paths)
        found: dict[str, tuple[str, str | None]] = {}
        starter = starter_model()
        if starter:
            found[str(starter)] = ("starter", None)
        if self.paths.models.is_dir():
            for path in sorted(self.paths.models.rglob("*.gguf")):
                if _is_model_file(path):
                    parts = path.relative_to(self.paths.models).parts
                    found[str(path)] = ("hub", "/".join(parts[:2]) if len(parts) > 2 else None)
        for folder in folders:
            if not Path(folder).is_dir():
                continue
            for path in sorted(Path(folder).rglob("*.gguf")):
                if _is_model_file(path):
                    found.setdefault(str(path), ("folder", None))
        for row in self.repo.all():
            if row.source == "added" and Path(row.path).is_file():
                found.setdefault(row.path, (row.source, None))
            elif row.path not in found and write:
                self.repo.remove(row.path)  # the file is gone
        return [self._entry(Path(path), source, repo_id, write) for path, (source, repo_id) in found.items()]

    def add_folder(self, folder: Path) -> list[Path]:
        """Remember a folder to scan for models; returns the folders now configured."""
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise InvalidInput(f"{folder} is not a folder.")

        def change(settings) -> None:
            current = [p for p in settings.get(FOLDERS_KEY, [], kind=list) if isinstance(p, str)]
            if str(folder) not in current:
                settings.set(FOLDERS_KEY, current + [str(folder)])

        update_settings(self.paths.settings, change)
        return model_folders(self.paths)

    def forget_folder(self, folder: Path) -> list[Path]:
        """Stop scanning a folder (its files stay; its models leave the library at the scan that follows)."""
        folder = str(Path(folder))

        def change(settings) -> None:
            current = [p for p in settings.get(FOLDERS_KEY, [], kind=list) if isinstance(p, str)]
            settings.set(FOLDERS_KEY, [p for p in current if p != folder])

        update_settings(self.paths.settings, change)
        return model_folders(self.paths)

    def add_file(self, path: Path) -> LibraryEntry:
        """Add a GGUF the user already has (by Open… or drag and drop); it stays where it is."""
        path = Path(path).expanduser().resolve()
        inspect_gguf(path)  # refuse a file that is not a model, with the reason
        require_every_part(path)  # and a split model with a part missing
        return self._entry(path, "added", None)

    def remove(self, entry: LibraryEntry, delete_file: bool) -> None:
        """Forget a model; delete its file only when asked and only for Ember's own downloads."""
        if entry.source == "starter":
            raise InvalidInput("The starter model comes with Ember and cannot be deleted.")
        if delete_file:
            if entry.source != "hub":
                raise InvalidInput("Ember only deletes files it downloaded.",
                                   "Remove it from the library instead; your file stays where it is.")
            for part in split_parts(Path(entry.path)):  # every part of a split model
                for path in (part, part_path(part), sidecar_path(part)):
                    path.unlink(missing_ok=True)
        self.repo.remove(entry.path)

    def compute_sha256(self, entry: LibraryEntry,
                       cancel: CancelToken | None = None) -> Generator[Progress, None, str | None]:
        """Hash a model (its first file) once and keep it in the database; returns the hex digest, or
        None if cancelled or the file changed. Run it on a worker with a Library on that worker's connection.

        Storing it also fills it into the replies made with this file that lack it (schema v2's
        trigger), so it is stored only for the file the library row describes: a file that changed
        since the scan, or while it was read, gets no hash (the next scan sees the change)."""
        if entry.sha256:
            return entry.sha256
        path = Path(entry.path)
        before = path.stat()
        digest = yield from sha256_file(path, cancel)
        if not digest:
            return None
        after = path.stat()
        if (after.st_size, after.st_mtime) != (before.st_size, before.st_mtime):
            return None
        stored = self.repo.set_sha256(entry.path, digest, size=before.st_size, mtime=before.st_mtime)
        return digest if stored else None

    def _entry(self, path: Path, source: str, repo_id: str | None, write: bool = True) -> LibraryEntry:
        stat = path.stat()
        row = self.repo.get(str(path))
        fresh = row is not None and row.size == stat.st_size and row.mtime == stat.st_mtime and row.inspection
        info, error = (info_from_row(row) if fresh else None), None
        if info is None:
            try:
                info = inspect_gguf(path)
            except BadModelFile as exc:
                error = exc.message
        if not write:
            return self._unsaved_entry(path, source, repo_id, row, info, error)
        row = self.repo.upsert(str(path), stat.st_size, stat.st_mtime, source,
                               inspection=info.to_dict() if info else None, repo_id=repo_id)
        if row.sha256 is None and source == "hub" and (digest := verified_sha256(path)):
            self.repo.set_sha256(str(path), digest, size=stat.st_size, mtime=stat.st_mtime)
            row = dataclasses.replace(row, sha256=digest)
        return LibraryEntry(str(path), source, info, error, row.sha256, row.repo_id, row.measured_tps)

    @staticmethod
    def _unsaved_entry(path: Path, source: str, repo_id: str | None, row: ModelRow | None,
                       info: ModelInfo | None, error: str | None) -> LibraryEntry:
        """The entry `_entry` would store, built without writing: a stored hash counts only while the
        row still describes the file (as `upsert` keeps it)."""
        stat = path.stat()
        unchanged = row is not None and row.size == stat.st_size and row.mtime == stat.st_mtime
        sha256 = row.sha256 if unchanged else None
        if sha256 is None and source == "hub":
            sha256 = verified_sha256(path)
        return LibraryEntry(str(path), source, info, error, sha256, repo_id or (row.repo_id if row else None),
                            row.measured_tps if row else None)


def info_from_row(row: ModelRow) -> ModelInfo | None:
    """The inspection stored with a library row, as a ModelInfo (None if it does not fit ModelInfo)."""
    fields = {f.name for f in dataclasses.fields(ModelInfo)}
    data = {k: v for k, v in (row.inspection or {}).items() if k in fields}
    try:
        return ModelInfo(**{"chat_template": None, **data})
    except TypeError:
        return None
