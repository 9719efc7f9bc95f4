"""The one SQLite database: WAL mode, `PRAGMA user_version`, ordered migration functions.

Every thread opens its own connection with `connect()`; WAL lets a worker save a streaming reply
while the UI thread reads. A database from a newer Ember is refused; before any migration the
file is copied to `ember.db.bak-v<old>`. A failing SQLite call reaches the user as a DatabaseError
that says what happened and what to do (`to_database_error`), not as a raw sqlite3 error.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import DatabaseError, DatabaseTooNew
from engine.store import schema

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000

# Ordered: MIGRATIONS[i] takes the database from version i to i + 1. Released ones are frozen.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    schema.migrate_to_v1, schema.migrate_to_v2, schema.migrate_to_v3, schema.migrate_to_v4,
    schema.migrate_to_v5,
]
SCHEMA_VERSION = len(MIGRATIONS)

# SQLite's primary result codes (https://sqlite.org/rescode.html) that a user can do something about.
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN = 3, 5, 6, 8, 10, 11, 13, 14
_CONSTRAINT, _NOTADB = 19, 26
_FULL_HINT = "Free some disk space, then try again. Your text is kept, and everything saved before is intact."
_READONLY_HINT = ("Check that you may write to Ember's data folder (its permissions, or a disk mounted read-only), "
                  "then try again.")
_BUSY_HINT = "Wait a moment and try again; close other programs that have ember.db open."
_CORRUPT_HINT = ("Start the Ember app: it sets the damaged file aside (nothing is deleted) and brings back what "
                 "can be read, from its last backup and from the file.")


def _kind(exc: sqlite3.Error) -> int | None:
    """The primary result code of a sqlite3 error, from the code when Python has it, else from its text."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc).lower()
    for words, kind in ((("full",), _FULL), (("readonly", "read-only"), _READONLY), (("locked",), _LOCKED),
                        (("busy",), _BUSY), (("malformed", "not a database"), _CORRUPT)):
        if any(word in text for word in words):
            return kind
    return None


def to_database_error(exc: sqlite3.Error, doing: str = "save your changes") -> DatabaseError:
    """A readable DatabaseError for a sqlite3 error; `doing` completes "Could not …" ("save the message")."""
    kind = _kind(exc)
    log.error("SQLite failed to %s: %s", doing, exc)
    if kind == _FULL:
        return DatabaseError(f"Could not {doing}: the disk (or the database) is full.", _FULL_HINT)
    if kind in (_READONLY, _PERM, _CANTOPEN):
        return DatabaseError(f"Could not {doing}: the database cannot be written ({exc}).", _READONLY_HINT)
    if kind in (_BUSY, _LOCKED):
        return DatabaseError(f"Could not {doing}: the database is busy with another writer.", _BUSY_HINT)
    if kind in (_CORRUPT, _NOTADB):
        return DatabaseError(f"Could not {doing}: the database file is damaged ({exc}).", _CORRUPT_HINT)
    if kind == _IOERR:
        return DatabaseError(f"Could not {doing}: the disk could not be read or written ({exc}).",
                             "Check the disk (free space, a removed drive), then try again; see the log.")
    if kind == _CONSTRAINT:
        return DatabaseError(f"Could not {doing}: the database refused it ({exc}).",
                             "Nothing of it was saved. This is likely a bug in Ember; see the log.")
    return DatabaseError(f"Could not {doing}: {exc}.")


@contextmanager
def database_errors(doing: str) -> Iterator[None]:
    """Raise DatabaseError instead of a sqlite3 error from the block; also a decorator (`@database_errors(...)`)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise to_database_error(exc, doing) from exc


def connect(path: Path, *, migrate: bool = True) -> sqlite3.Connection:
    """Open the database (creating and migrating it when asked) with the settings Ember relies on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with database_errors(f"open the database {path}"):
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None)
        try:
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
        except BaseException:
            conn.close()
            raise
    return conn


def connect_read_only(path: Path) -> sqlite3.Connection:
    """The database opened read-only (a listing beside the window that owns the home), or an empty one
    in memory when there is none yet: such a reader neither writes the file nor creates it."""
    path = Path(path)
    if not path.exists():
        conn = sqlite3.connect(":memory:")
        conn.row_factory = sqlite3.Row
        migrate_database(conn, Path(":memory:"))  # the schema, with no rows
        return conn
    with database_errors("read the database"):
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    try:
        with database_errors("read the database"):
            check_version(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    version = user_version(conn)
    if version > SCHEMA_VERSION:
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
        log.info("Migrating %s to schema v%d", path, target)
        with Transaction(conn, f"upgrade the database to version {target}"):
            MIGRATIONS[target - 1](conn)
            conn.execute(f"PRAGMA user_version = {target}")


class Transaction:
    """`with Transaction(conn):` runs the block as one unit: all of it is saved, or none of it.

    Outermost: BEGIN IMMEDIATE (takes the write lock at once, so it never fails half-way on a
    lock upgrade) ... COMMIT, or ROLLBACK on an exception. Inside an open transaction it nests as a
    SAVEPOINT: an inner failure that the caller catches undoes only the inner block; the outer one
    decides whether anything is saved. So a caller can wrap several repository calls in one.
    A sqlite3 error comes out as DatabaseError (`doing` completes "Could not …").
    Needs a connection with isolation_level=None (as `connect` makes), so that Python's sqlite3
    starts no transactions of its own.
    """

    def __init__(self, conn: sqlite3.Connection, doing: str = "save your changes") -> None:
        self.conn = conn
        self.doing = doing
        self._savepoint: str | None = None

    def __enter__(self) -> sqlite3.Connection:
        with database_errors(self.doing):
            if self.conn.in_transaction:
                self._savepoint = f"ember_{id(self):x}"
                self.conn.execute(f"SAVEPOINT {self._savepoint}")
            else:
                self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.conn.execute(f"RELEASE {self._savepoint}" if self._savepoint else "COMMIT")
            except sqlite3.Error as error:
                self._undo()
                raise to_database_error(error, self.doing) from error
            return
        self._undo()
        if isinstance(exc, sqlite3.Error):
            raise to_database_error(exc, self.doing) from exc

    def _undo(self) -> None:
        # SQLite may already have rolled the whole transaction back itself (a full disk, an I/O error)
        if not self.conn.in_transaction:
            return
        try:
            if self._savepoint:
                self.conn.execute(f"ROLLBACK TO {self._savepoint}")
                self.conn.execute(f"RELEASE {self._savepoint}")
            else:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("Could not roll back a transaction")
