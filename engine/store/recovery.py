"""A damaged ember.db costs at most the last session, never the app: keep good copies, and when the
file cannot be used, set it aside untouched, start a new one and bring back what can be read.

    backup_database(paths)                  # at a clean exit: SQLite's online backup, a few kept
    report = check_or_recover(paths)        # at start, with the home's lock held; None when all is well

Recovery starts from the newest backup that opens and passes `PRAGMA quick_check`, then adds what
can still be read from the damaged file, table by table and, where a page is torn, row by row
(rows the backup has already are kept as they are). The damaged file and its WAL stay beside the new
database as `ember.db.damaged-<time>`, for the user or a better tool later.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.paths import EmberPaths
from engine.store.db import MIGRATIONS, SCHEMA_VERSION, connect

log = logging.getLogger(__name__)

KEEP_BACKUPS = 3
# What a user would miss, in an order that keeps references whole (parents before children).
# Documents and their chunks are not copied: the collections' sources are, and indexing them again
# rebuilds the index from the user's files (what a damaged index holds cannot be trusted anyway).
RECOVERED_TABLES = ("presets", "models", "sessions", "messages", "collections", "collection_sources",
                    "session_documents", "session_collections", "qa_pairs")
PROBE_MISSES = 2000  # rowids tried past the last readable row before a torn table is given up


@dataclass
class RecoveryReport:
    damaged: Path  # where the damaged file was set aside
    reason: str
    backup: Path | None = None  # the backup the new database started from
    from_backup: dict[str, int] = field(default_factory=dict)
    from_damaged: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        chats = self.from_backup.get("sessions", 0) + self.from_damaged.get("sessions", 0)
        messages = self.from_backup.get("messages", 0) + self.from_damaged.get("messages", 0)
        models = self.from_backup.get("models", 0) + self.from_damaged.get("models", 0)
        where = f" (from the backup of {time.strftime('%Y-%m-%d %H:%M', time.localtime(self.backup.stat().st_mtime))}" \
                f" and the damaged file)" if self.backup else " (from the damaged file)"
        return (f"Ember's database was damaged ({self.reason}). Recovered {_counted(chats, 'chat')}, "
                f"{_counted(messages, 'message')} and {_counted(models, 'library entry', 'library entries')}{where}. "
                f"The damaged file is kept as {self.damaged.name}.")


def _counted(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


# --- good copies -------------------------------------------------------------------------------------
def backups_folder(paths: EmberPaths) -> Path:
    return paths.home / "backups"


def backup_database(paths: EmberPaths, keep: int = KEEP_BACKUPS) -> Path | None:
    """Copy ember.db with SQLite's online backup (consistent even while open) and keep the newest few."""
    if not paths.db.exists():
        return None
    folder = backups_folder(paths)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"ember-{time.time_ns()}.db"  # names sort by age
    partial = target.with_name(target.name + ".partial")  # renamed when whole: a full disk leaves no half backup
    source = sqlite3.connect(paths.db)
    try:
        if source.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            log.warning("not backing up %s: it does not pass quick_check", paths.db)
            return None
        dest = sqlite3.connect(partial)
        try:
            source.backup(dest)
        finally:
            dest.close()
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    for old in sorted(folder.glob("ember-*.db"))[:-keep]:
        old.unlink(missing_ok=True)
    return target


# --- at start ----------------------------------------------------------------------------------------
def check_or_recover(paths: EmberPaths) -> RecoveryReport | None:
    """None when ember.db opens and passes quick_check (or is not there yet); else recover it."""
    if not paths.db.exists():
        return None
    reason = _problem(paths.db)
    if reason is None:
        return None
    log.error("ember.db is damaged (%s): recovering", reason)
    return recover(paths, reason)


def _problem(path: Path) -> str | None:
    status = path.stat()
    if not stat.S_ISREG(status.st_mode):  # a folder, a pipe, a link to a device
        return "it is not a regular file"
    wal = path.with_name(path.name + "-wal")
    if status.st_size == 0 and not (wal.exists() and wal.stat().st_size):
        # SQLite opens an empty file as a new, empty database: the chats would be gone without a word
        return "it is empty: 0 bytes"
    try:
        conn = sqlite3.connect(path)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if result != "ok":
        return f"quick_check: {result}"
    missing = sorted(_tables_of_version(version) - tables)
    if missing:  # sound as a file, but not Ember's at its version (a table dropped by another tool)
        return f"its table{'s' if len(missing) > 1 else ''} {', '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing"
    return None


def _tables_of_version(version: int) -> set[str]:
    """The tables Ember's migrations make up to `version` (none for a new file or a newer Ember's)."""
    if not 0 < version <= SCHEMA_VERSION:
        return set()
    conn = sqlite3.connect(":memory:")
    try:
        for migrate in MIGRATIONS[:version]:
            migrate(conn)
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if not row[0].startswith("sqlite_")}
    finally:
        conn.close()


def recover(paths: EmberPaths, reason: str) -> RecoveryReport:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    damaged = paths.db.with_name(f"{paths.db.name}.damaged-{stamp}")
    number = 1
    while damaged.exists():  # a second damaged file within the second: never over an earlier one
        number += 1
        damaged = paths.db.with_name(f"{paths.db.name}.damaged-{stamp}-{number}")
    paths.db.replace(damaged)
    for suffix in ("-wal", "-shm"):  # its journal goes with it: it belongs to the damaged file
        side = paths.db.with_name(paths.db.name + suffix)
        if side.exists():
            side.replace(damaged.with_name(damaged.name + suffix))
    report = RecoveryReport(damaged, reason)
    backup = _newest_good_backup(paths)
    if backup is not None:
        shutil.copy2(backup, paths.db)
        report.backup = backup
    conn = connect(paths.db)  # a new database (or the backup), migrated to this version
    try:
        if backup is not None:
            report.from_backup = {t: _count(conn, t) for t in RECOVERED_TABLES if _count(conn, t)}
        report.from_damaged = _salvage(damaged, conn)
    finally:
        conn.close()
    log.warning("%s", report.summary())
    return report


def _newest_good_backup(paths: EmberPaths) -> Path | None:
    for candidate in sorted(backups_folder(paths).glob("ember-*.db"), reverse=True):
        if _problem(candidate) is None:
            return candidate
    return None


def _count(conn: sqlite3.Connection, table: str) -> int:
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def _readable_copy(damaged: Path) -> Path:
    """A copy of the damaged file that SQLite agrees to open: a file cut short is padded back to the
    size its header gives (the missing pages read as damaged, the rest as they were)."""
    copy = damaged.with_name(damaged.name + ".reading")
    shutil.copyfile(damaged, copy)
    with open(copy, "r+b") as f:
        header = f.read(100)
        if len(header) == 100 and header.startswith(b"SQLite format 3\x00"):
            page_size = int.from_bytes(header[16:18], "big")
            page_size = 65536 if page_size == 1 else page_size
            pages = int.from_bytes(header[28:32], "big")
            wanted = page_size * pages
            f.seek(0, 2)
            if f.tell() < wanted:
                f.write(b"\x00" * (wanted - f.tell()))
    return copy


def _salvage(damaged: Path, conn: sqlite3.Connection) -> dict[str, int]:
    """Rows of the damaged file that the new database lacks, table by table; {table: rows added}."""
    if not damaged.is_file():  # a folder (or a device) where ember.db should be: nothing to read
        log.warning("nothing can be read from %s: it is not a file", damaged)
        return {}
    copy = _readable_copy(damaged)
    try:
        source = sqlite3.connect(f"{copy.as_uri()}?mode=ro&immutable=1", uri=True)
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        log.warning("nothing can be read from %s: %s", damaged, exc)
        copy.unlink(missing_ok=True)
        return {}
    added: dict[str, int] = {}
    try:
        conn.execute("PRAGMA foreign_keys = OFF")  # rows come in table by table; references are checked after
        for table in RECOVERED_TABLES:
            columns = _common_columns(source, conn, table)
            if not columns:
                continue
            count = 0
            insert = f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            conn.execute("BEGIN")
            for row in _readable_rows(source, table, columns):
                try:
                    count += conn.execute(insert, row).rowcount
                except sqlite3.Error as exc:  # a row this schema refuses (a damaged value): left in the old file
                    log.warning("a row of %s was not recovered: %s", table, exc)
            conn.execute("COMMIT")
            if count:
                added[table] = count
        _drop_orphans(conn)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
        source.close()
        copy.unlink(missing_ok=True)
    return added


def _common_columns(source: sqlite3.Connection, conn: sqlite3.Connection, table: str) -> list[str]:
    try:
        theirs = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError:
        return []
    ours = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    return [c for c in theirs if c in ours]


def _readable_rows(source: sqlite3.Connection, table: str, columns: list[str]):
    """Every row that can be read: all at once, or, past a torn page, one rowid at a time."""
    select = f"SELECT {', '.join(columns)} FROM {table}"
    try:
        yield from source.execute(select).fetchall()
        return
    except sqlite3.DatabaseError as exc:
        log.warning("%s is torn (%s): reading it row by row", table, exc)
    rowid, misses = 0, 0
    while misses < PROBE_MISSES:
        rowid += 1
        try:
            row = source.execute(f"{select} WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            row = None
        if row is None:
            misses += 1
        else:
            misses = 0
            yield row


def _drop_orphans(conn: sqlite3.Connection) -> None:
    """A message whose chat was lost cannot be shown: such rows go (the damaged file keeps them)."""
    conn.execute("DELETE FROM messages WHERE session_id NOT IN (SELECT id FROM sessions)")
    conn.execute("UPDATE messages SET parent_id = NULL WHERE parent_id IS NOT NULL "
                 "AND parent_id NOT IN (SELECT id FROM messages)")
    conn.execute("UPDATE sessions SET current_leaf_id = NULL WHERE current_leaf_id IS NOT NULL "
                 "AND current_leaf_id NOT IN (SELECT id FROM messages)")
