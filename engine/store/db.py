"""The one SQLite database: WAL mode, `PRAGMA user_version`, ordered migration functions.

Every thread opens its own connection with `connect()`; WAL lets a worker save a streaming reply
while the UI thread reads. A database from a newer Ember is refused; before any migration the
file is copied to `ember.db.bak-v<old>`.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from engine.errors import DatabaseError, DatabaseTooNew
from engine.store import schema

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000

# Ordered: MIGRATIONS[i] takes the database from version i to i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [schema.migrate_to_v1]
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, *, migrate: bool = True) -> sqlite3.Connection:
    """Open the database (creating and migrating it when asked) with the settings Ember relies on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseError(f"Could not open the database {path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        log.warning("SQLite refused WAL mode for %s (got %s)", path, mode)
    conn.execute("PRAGMA synchronous = NORMAL")
    if migrate:
        migrate_database(conn, path)
    else:
        check_version(conn, path)
    return conn


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    version = user_version(conn)
    if version > SCHEMA_VERSION:
        conn.close()
        raise DatabaseTooNew(
            f"The database {path} has schema version {version}; this Ember knows up to {SCHEMA_VERSION}."
        )
    return version


def migrate_database(conn: sqlite3.Connection, path: Path) -> None:
    version = check_version(conn, path)
    if version == SCHEMA_VERSION:
        return
    if version > 0 and path.exists():
        backup = path.with_name(f"{path.name}.bak-v{version}")
        conn.execute("PRAGMA wal_checkpoint(FULL)")
        shutil.copy2(path, backup)
        log.info("Copied %s to %s before migrating", path, backup)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        migration = MIGRATIONS[target - 1]
        log.info("Migrating %s to schema v%d", path, target)
        try:
            conn.execute("BEGIN IMMEDIATE")
            migration(conn)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise DatabaseError(f"Migrating the database to version {target} failed: {exc}") from exc


class Transaction:
    """`with Transaction(conn):` runs the block in one write transaction (BEGIN IMMEDIATE ... COMMIT)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
