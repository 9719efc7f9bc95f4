"""Move Ember's home (the database, downloaded models, adapters, fine-tune jobs, settings) to another
folder, for a bigger or faster disk. It copies, never moves: the old home stays as it was until the
user deletes it, so a move cut off half way, a full disk or a pulled cable lose nothing. The copy is
made in `<target>.ember-partial` and renamed only once complete, so a half copy is never taken for a
home. Paths inside the copy that point into the old home (the library's models, chats' adapters,
fine-tune jobs, settings) are rewritten to the new one. Ember uses the new home from its next start
(engine/paths.home_pointer records it)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from engine.errors import Cancelled, InvalidInput, NotEnoughDisk
from engine.jobs import CancelToken, Progress
from engine.paths import EmberPaths, write_home_pointer

COPY_BLOCK = 8 * 1024 * 1024
SPACE_MARGIN = 1.05  # the copy plus a little room for the database to grow
SKIPPED = {"ember.db", "ember.db-wal", "ember.db-shm", "ember.lock"}  # the database is copied by SQLite itself


def check_target(paths: EmberPaths, target: Path) -> int:
    """Refuse a target that cannot work, with what to choose instead; return the bytes to copy."""
    home, target = paths.home.resolve(), Path(target).expanduser()
    if not target.is_absolute():
        raise InvalidInput(f"Choose a full path for the new data folder, not {str(target)!r}.")
    resolved = target.resolve()
    if resolved == home:
        raise InvalidInput("That is already Ember's data folder.")
    if home in resolved.parents:
        raise InvalidInput("The new data folder cannot be inside the current one. Choose a folder elsewhere.")
    if resolved in home.parents:
        raise InvalidInput("The new data folder cannot contain the current one. Choose an empty folder elsewhere.")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(f"{target} is not empty. Choose an empty or new folder.")
    needed = home_size(paths)
    existing = next(p for p in (target, *target.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < needed * SPACE_MARGIN:
        raise NotEnoughDisk(f"The new folder's disk has {free / 1e9:.1f} GB free; Ember's data needs "
                            f"{needed * SPACE_MARGIN / 1e9:.1f} GB.", "Free some space or choose another disk.")
    return needed


def home_size(paths: EmberPaths) -> int:
    return sum(f.stat().st_size for f in paths.home.rglob("*") if f.is_file() and not f.is_symlink())


def move_home(paths: EmberPaths, target: Path, cancel: CancelToken) -> Iterator[Progress]:
    """Copy the home to `target` (bytes as progress), rewrite its paths, and record it for the next start."""
    target = Path(target).expanduser()
    total = check_target(paths, target)
    partial = target.with_name(target.name + ".ember-partial")
    if partial.exists():
        shutil.rmtree(partial)  # the leftover of a move that was cut off: never a home
    partial.mkdir(parents=True)
    new = str(target.resolve())
    spellings = {str(paths.home), str(paths.home.resolve())}  # as stored: EMBER_HOME's own spelling, or resolved
    done = 0
    try:
        yield Progress(0, total, "B", "Copying the database…")
        _copy_database(paths.db, partial / "ember.db")
        done += paths.db.stat().st_size if paths.db.exists() else 0
        for source in sorted(paths.home.rglob("*")):
            relative = source.relative_to(paths.home)
            if relative.as_posix() in SKIPPED or source.is_symlink():
                continue
            dest = partial / relative
            if source.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            for copied in _copy_file(source, dest, cancel):
                yield Progress(done + copied, total, "B", f"Copying {relative}…")
            done += source.stat().st_size
        yield Progress(done, total, "B", "Pointing the copy at its new place…")
        for old in spellings:
            rebase_database(partial / "ember.db", old, new)
            for settings_file in partial.rglob("*.json"):
                rebase_json_file(settings_file, old, new)
        if cancel.cancelled:
            raise Cancelled("Stopped moving the data; nothing was moved.")
        if target.exists():
            target.rmdir()  # checked empty before the copy
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    write_home_pointer(target)
    yield Progress(total, total, "B", f"Ember's data is now also in {target}; it is used from the next start.")


def _copy_database(source: Path, dest: Path) -> None:
    """SQLite's online backup: a consistent copy even while the app has the database open."""
    if not source.exists():
        return
    reading, writing = sqlite3.connect(source), sqlite3.connect(dest)
    try:
        reading.backup(writing)
    finally:
        writing.close()
        reading.close()


def _copy_file(source: Path, dest: Path, cancel: CancelToken) -> Iterator[int]:
    """Copy in blocks, saying how far it got and stopping at a cancel."""
    copied = 0
    with open(source, "rb") as src, open(dest, "wb") as out:
        while block := src.read(COPY_BLOCK):
            if cancel.cancelled:
                raise Cancelled("Stopped moving the data; nothing was moved.")
            out.write(block)
            copied += len(block)
            yield copied
        out.flush()
        os.fsync(out.fileno())
    shutil.copystat(source, dest)


def rebase_database(db: Path, old: str, new: str) -> int:
    """Rewrite every `...path` text column whose value lies in the old home; return the rows changed."""
    conn = sqlite3.connect(db)
    changed = 0
    try:
        with conn:
            tables = [row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND sql NOT LIKE 'CREATE VIRTUAL%'")]
            for table in tables:
                for column in conn.execute(f'PRAGMA table_info("{table}")').fetchall():
                    name = column[1]
                    if not name.endswith("path"):
                        continue
                    changed += conn.execute(
                        f'UPDATE "{table}" SET "{name}" = ? || substr("{name}", ?) '
                        f'WHERE "{name}" = ? OR substr("{name}", 1, ?) = ?',
                        (new, len(old) + 1, old, len(old) + 1, old + os.sep)).rowcount
    finally:
        conn.close()
    return changed


def rebase_json_file(path: Path, old: str, new: str) -> None:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return  # not Ember's JSON (or damaged): copied as it was
    rebased = rebase_value(value, old, new)
    if rebased != value:
        path.write_text(json.dumps(rebased, indent=2), "utf-8")


def rebase_value(value, old: str, new: str):
    """A JSON value with every string that is a path in the old home pointed at the new one."""
    if isinstance(value, str):
        if value == old or value.startswith(old + os.sep):
            return new + value[len(old):]
        return value
    if isinstance(value, list):
        return [rebase_value(item, old, new) for item in value]
    if isinstance(value, dict):
        return {key: rebase_value(item, old, new) for key, item in value.items()}
    return value
