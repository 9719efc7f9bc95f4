"""All SQL for the model library (table `models`): one row per GGUF file Ember knows.

Writing `sha256` also fills it into every reply made with that file that lacks it (a trigger of
schema v2), so write it only for the file as the row describes it (`set_sha256` with size and mtime)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from engine.errors import InvalidInput
from engine.store.db import database_errors
from engine.store.schema import MODEL_SOURCES


@dataclass(frozen=True)
class ModelRow:
    path: str
    size: int
    mtime: float
    source: str
    sha256: str | None = None
    repo_id: str | None = None
    inspection: dict | None = None
    measured_tps: float | None = None


def _row(row: sqlite3.Row) -> ModelRow:
    return ModelRow(row["path"], row["size"], row["mtime"], row["source"], row["sha256"], row["repo_id"],
                    json.loads(row["inspection_json"]) if row["inspection_json"] else None, row["measured_tps"])


class ModelRepository:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, path: str) -> ModelRow | None:
        row = self.conn.execute("SELECT * FROM models WHERE path = ?", (path,)).fetchone()
        return _row(row) if row else None

    def all(self) -> list[ModelRow]:
        return [_row(r) for r in self.conn.execute("SELECT * FROM models ORDER BY added_at, id")]

    @database_errors("save the model library")
    def upsert(self, path: str, size: int, mtime: float, source: str, *, inspection: dict | None = None,
               repo_id: str | None = None) -> ModelRow:
        """Add or refresh a file; a changed size or mtime forgets the old hash and inspection."""
        if source not in MODEL_SOURCES:
            raise InvalidInput(f"Unknown model source {source!r}.")
        # one statement compares with the stored row, so no other writer can slip in between
        self.conn.execute(
            """INSERT INTO models (path, size, mtime, sha256, source, repo_id, inspection_json, added_at)
               VALUES (?, ?, ?, NULL, ?, ?, ?, ?)
               ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime = excluded.mtime,
                   sha256 = CASE WHEN models.size = excluded.size AND models.mtime = excluded.mtime
                                 THEN models.sha256 END,
                   inspection_json = COALESCE(excluded.inspection_json,
                                              CASE WHEN models.size = excluded.size AND models.mtime = excluded.mtime
                                                   THEN models.inspection_json END),
                   repo_id = COALESCE(excluded.repo_id, models.repo_id)""",
            (path, size, mtime, source, repo_id, json.dumps(inspection) if inspection else None, time.time()),
        )
        return self.get(path)

    @database_errors("save the model's SHA-256")
    def set_sha256(self, path: str, sha256: str, *, size: int | None = None, mtime: float | None = None) -> bool:
        """Store a file's hash; with `size` and `mtime`, only if the row still describes that file.
        Returns whether it was stored."""
        if size is None or mtime is None:
            cur = self.conn.execute("UPDATE models SET sha256 = ? WHERE path = ?", (sha256, path))
        else:
            cur = self.conn.execute("UPDATE models SET sha256 = ? WHERE path = ? AND size = ? AND mtime = ?",
                                    (sha256, path, size, mtime))
        return cur.rowcount > 0

    @database_errors("save the model's measured speed")
    def set_measured_speed(self, path: str, tokens_per_s: float) -> None:
        self.conn.execute("UPDATE models SET measured_tps = ? WHERE path = ?", (tokens_per_s, path))

    @database_errors("save the model library")
    def remove(self, path: str) -> None:
        self.conn.execute("DELETE FROM models WHERE path = ?", (path,))
