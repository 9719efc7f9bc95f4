"""The local model library: the starter model, downloads in EMBER_HOME/models, folders and files the user adds.

Each file is inspected once (the result is kept in ember.db by path, size and mtime). A file that
fails inspection stays listed with the reason, so the user sees why it cannot be used.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from engine.errors import BadModelFile, InvalidInput
from engine.hub.inspect import SPLIT_NAME, ModelInfo, inspect_gguf
from engine.paths import EmberPaths, starter_model
from engine.store.models_repo import ModelRepository, ModelRow


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
        data.update(path=self.path, source=self.source, sha256=self.sha256, error=self.error)
        return data


def _is_model_file(path: Path) -> bool:
    if path.suffix.lower() != ".gguf" or not path.is_file():
        return False
    split = SPLIT_NAME.match(path.name)
    return not split or int(split["part"]) == 1  # later parts belong to the first


class Library:
    def __init__(self, paths: EmberPaths, conn: sqlite3.Connection) -> None:
        self.paths = paths
        self.repo = ModelRepository(conn)

    def scan(self, folders: list[Path] | None = None) -> list[LibraryEntry]:
        """Find every model, refresh the database, and return the entries (starter first)."""
        found: dict[str, tuple[str, str | None]] = {}
        starter = starter_model()
        if starter:
            found[str(starter)] = ("starter", None)
        if self.paths.models.is_dir():
            for path in sorted(self.paths.models.rglob("*.gguf")):
                if _is_model_file(path):
                    parts = path.relative_to(self.paths.models).parts
                    found[str(path)] = ("hub", "/".join(parts[:2]) if len(parts) > 2 else None)
        for folder in folders or []:
            for path in sorted(Path(folder).rglob("*.gguf")):
                if _is_model_file(path):
                    found.setdefault(str(path), ("folder", None))
        for row in self.repo.all():
            if row.source in ("added", "folder") and Path(row.path).is_file():
                found.setdefault(row.path, (row.source, None))
            elif row.path not in found:
                self.repo.remove(row.path)  # the file is gone
        return [self._entry(Path(path), source, repo_id) for path, (source, repo_id) in found.items()]

    def add_file(self, path: Path) -> LibraryEntry:
        """Add a GGUF the user already has (by Open… or drag and drop); it stays where it is."""
        path = Path(path).expanduser().resolve()
        inspect_gguf(path)  # refuse a file that is not a model, with the reason
        return self._entry(path, "added", None)

    def remove(self, entry: LibraryEntry, delete_file: bool) -> None:
        """Forget a model; delete its file only when asked and only for Ember's own downloads."""
        if entry.source == "starter":
            raise InvalidInput("The starter model comes with Ember and cannot be deleted.")
        if delete_file:
            if entry.source != "hub":
                raise InvalidInput("Ember only deletes files it downloaded.",
                                   "Remove it from the library instead; your file stays where it is.")
            for path in Path(entry.path).parent.glob(Path(entry.path).name + "*"):
                path.unlink(missing_ok=True)
        self.repo.remove(entry.path)

    def _entry(self, path: Path, source: str, repo_id: str | None) -> LibraryEntry:
        stat = path.stat()
        row = self.repo.get(str(path))
        fresh = row is not None and row.size == stat.st_size and row.mtime == stat.st_mtime and row.inspection
        info, error = (_info_from(row) if fresh else None), None
        if info is None:
            try:
                info = inspect_gguf(path)
            except BadModelFile as exc:
                error = exc.message
        row = self.repo.upsert(str(path), stat.st_size, stat.st_mtime, source,
                               inspection=info.to_dict() if info else None, repo_id=repo_id)
        return LibraryEntry(str(path), source, info, error, row.sha256, row.repo_id, row.measured_tps)


def _info_from(row: ModelRow) -> ModelInfo | None:
    fields = {f.name for f in dataclasses.fields(ModelInfo)}
    data = {k: v for k, v in (row.inspection or {}).items() if k in fields}
    try:
        return ModelInfo(**{"chat_template": None, **data})
    except TypeError:
        return None
