"""Hostile storage: ember.db empty, noise, torn, with a damaged WAL, from a newer Ember; a data folder
Ember may not write; the disk filling up while a message is saved and while a collection is indexed.
Each case: Ember starts (or says plainly why not), nothing stored is lost, nothing half-saved is
taken as saved.

Recovery's own details (what a backup gives back, row by row past a torn page, a WAL frame whose
checksum fails) are in tests/engine/test_recovery.py; SQLITE_FULL from a capped page count in
tests/engine/test_database_errors.py. These go through Ember's start (`open_home`, `python -m app`,
`ember`) and use a real full disk (a small tmpfs) and a real other user (uid 65534)."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.application import open_home
from engine.errors import DatabaseTooNew
from engine.paths import EmberPaths
from engine.store.chats import ChatRepository
from engine.store.db import SCHEMA_VERSION, connect
from engine.store.recovery import backup_database
from tests.support.hostile_storage import (
    ROOT,
    as_nobody,
    can_switch_to_nobody,
    on_small_disk,
    python,
    python_env,
    running_as_root,
)

pytestmark = pytest.mark.timeout(120)
PAGE = 4096


def write_chats(paths: EmberPaths, titles: list[str]) -> None:
    conn = connect(paths.db)
    repo = ChatRepository(conn)
    for title in titles:
        session = repo.create_session(title)
        repo.add_message(session.id, None, "user", f"the first words of {title} " + "text " * 50)
    conn.close()


def chat_titles(paths: EmberPaths) -> set[str]:
    conn = connect(paths.db, migrate=False)
    try:
        return {s.title for s in ChatRepository(conn).list_sessions()}
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def start(paths: EmberPaths):
    """Ember's own start (lock, recovery, settings, services); the caller gets the services."""
    lock, services = open_home(paths)
    lock.release()
    services.close()
    return services


# --- a damaged ember.db at start ----------------------------------------------------------------------
def test_a_zero_byte_database_comes_back_from_the_backup_instead_of_starting_empty(paths):
    """SQLite opens an empty file as a new database: without a check the chats would vanish silently."""
    write_chats(paths, ["Kept 1", "Kept 2"])
    backup_database(paths)
    paths.db.write_bytes(b"")
    for side in ("-wal", "-shm"):
        Path(f"{paths.db}{side}").unlink(missing_ok=True)
    services = start(paths)
    assert services.recovery is not None and services.recovery.reason == "it is empty: 0 bytes"
    assert "Ember's database was damaged (it is empty: 0 bytes). Recovered 2 chats" in services.recovery.summary()
    assert chat_titles(paths) == {"Kept 1", "Kept 2"}
    assert services.recovery.damaged.stat().st_size == 0  # kept as it was
    assert integrity(paths.db) == "ok"


def test_a_zero_byte_database_without_a_backup_starts_anew_and_says_so(paths):
    paths.db.write_bytes(b"")
    services = start(paths)
    assert services.recovery is not None and "Recovered 0 chats" in services.recovery.summary()
    assert chat_titles(paths) == set() and integrity(paths.db) == "ok"


def damage(paths: EmberPaths, how: str) -> None:
    data = paths.db.read_bytes()
    if how == "random bytes":
        paths.db.write_bytes(random.Random(11).randbytes(len(data)))
    elif how == "cut mid-page":
        paths.db.write_bytes(data[: len(data) // 2 + PAGE // 3])
    elif how == "torn page":
        with open(paths.db, "r+b") as f:
            f.seek((len(data) // PAGE // 2) * PAGE)
            f.write(random.Random(12).randbytes(PAGE))
    elif how == "header overwritten":
        paths.db.write_bytes(random.Random(13).randbytes(100) + data[100:])


@pytest.mark.parametrize("how", ["random bytes", "cut mid-page", "torn page", "header overwritten"])
def test_a_damaged_database_is_set_aside_and_ember_starts_with_what_can_be_read(paths, how):
    write_chats(paths, [f"Chat {n}" for n in range(30)])
    backup_database(paths)
    write_chats(paths, ["After the backup"])
    conn = sqlite3.connect(paths.db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    damage(paths, how)
    damaged_bytes = paths.db.read_bytes()
    services = start(paths)
    assert services.recovery is not None, how
    assert services.recovery.damaged.read_bytes() == damaged_bytes  # untouched beside the new file
    assert {f"Chat {n}" for n in range(30)} <= chat_titles(paths)  # the backup at least
    assert integrity(paths.db) == "ok"
    assert "Recovered" in services.recovery.summary() and services.recovery.damaged.name in services.recovery.summary()


@pytest.mark.parametrize("side", ["-wal", "-shm", "both"])
def test_noise_in_the_wal_or_shared_memory_file_costs_nothing_committed(paths, side):
    write_chats(paths, ["Committed 1", "Committed 2"])
    conn = sqlite3.connect(paths.db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in (["-wal", "-shm"] if side == "both" else [side]):
        Path(f"{paths.db}{suffix}").write_bytes(random.Random(4).randbytes(32 * 1024))
    services = start(paths)
    assert services.recovery is None  # SQLite ignores a WAL whose header or checksums fail
    assert chat_titles(paths) == {"Committed 1", "Committed 2"}
    write_chats(paths, ["After"])  # and writes on
    assert integrity(paths.db) == "ok"


@pytest.mark.parametrize("kind", ["folder", "named pipe", "link to /dev/zero"])
def test_a_folder_pipe_or_device_in_place_of_the_database_is_set_aside(paths, kind):
    if kind == "folder":
        paths.db.mkdir()
        (paths.db / "something.txt").write_text("a folder named ember.db")
    elif kind == "named pipe":
        os.mkfifo(paths.db)
    else:
        paths.db.symlink_to("/dev/zero")
    services = start(paths)
    assert services.recovery is not None and services.recovery.reason == "it is not a regular file"
    if kind == "folder":
        assert (services.recovery.damaged / "something.txt").read_text() == "a folder named ember.db"
    assert paths.db.is_file() and not paths.db.is_symlink() and integrity(paths.db) == "ok"


def test_a_damaged_newest_backup_is_passed_over_for_the_older_good_one(paths):
    write_chats(paths, ["In both backups"])
    older = backup_database(paths)
    write_chats(paths, ["Only in the newer backup"])
    newer = backup_database(paths)
    newer.write_bytes(random.Random(21).randbytes(newer.stat().st_size))  # the newest copy is noise too
    paths.db.write_bytes(random.Random(22).randbytes(paths.db.stat().st_size))
    Path(f"{paths.db}-wal").unlink(missing_ok=True)
    services = start(paths)
    assert services.recovery.backup == older
    assert chat_titles(paths) == {"In both backups"} and integrity(paths.db) == "ok"


def test_a_database_missing_one_of_embers_tables_is_recovered_instead_of_refusing_to_start(paths):
    """Another tool dropped a table: the file is sound, so only the schema says something is wrong.
    Ember used to refuse to start ("Could not recover the replies cut off last time: no such table")."""
    write_chats(paths, ["In the backup"])
    backup_database(paths)
    write_chats(paths, ["Only in the file"])
    conn = sqlite3.connect(paths.db)
    conn.execute("DROP TABLE messages")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    services = start(paths)
    assert services.recovery is not None and services.recovery.reason == "its table messages is missing"
    assert chat_titles(paths) == {"In the backup", "Only in the file"}  # the chats the file still had, too
    assert integrity(paths.db) == "ok"


# --- a database from a newer Ember ------------------------------------------------------------------
def test_a_database_from_a_newer_ember_is_refused_untouched_and_the_app_says_why(paths):
    write_chats(paths, ["From the future"])
    conn = sqlite3.connect(paths.db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = paths.db.read_bytes()
    with pytest.raises(DatabaseTooNew) as refused:
        open_home(paths)
    assert f"has schema version {SCHEMA_VERSION + 3}; this Ember knows up to {SCHEMA_VERSION}" in refused.value.message
    assert "Update Ember" in refused.value.hint
    result = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=python_env(paths.home),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "this Ember knows up to" in result.stderr and "Traceback" not in result.stderr
    assert paths.db.read_bytes() == before  # not migrated, not recovered, not backed up over
    assert not list(paths.home.glob("ember.db.damaged-*")) and not list(paths.home.glob("ember.db.bak-*"))


# --- a data folder Ember may not write -----------------------------------------------------------------
needs_another_user = pytest.mark.skipif(running_as_root() and not can_switch_to_nobody(),
                                        reason="root ignores permissions and setpriv is not here to drop them")


def nobody_home(tmp_path: Path) -> Path:
    """A folder the unprivileged user can reach (pytest's own tmp folder is private to root)."""
    outer = Path(os.environ.get("TMPDIR", "/tmp")) / f"ember-hostile-{os.getpid()}-{tmp_path.name}"
    outer.mkdir(mode=0o755)
    outer.chmod(0o755)
    return outer


@needs_another_user
@pytest.mark.parametrize("case", ["another user's folder", "read-only folder", "read-only database"])
def test_a_data_folder_ember_may_not_write_is_said_plainly_and_nothing_is_changed(tmp_path, case):
    outer = nobody_home(tmp_path)
    try:
        home = outer / "home"
        paths = EmberPaths(home).ensure()
        write_chats(paths, ["Mine"])
        sqlite3.connect(paths.db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
        owner = 65534 if running_as_root() and case != "another user's folder" else os.getuid()
        for path in [home, *home.rglob("*")]:
            os.chown(path, owner, owner) if running_as_root() else None
        if case == "read-only folder":
            for path in [*home.rglob("*"), home]:
                path.chmod(0o555 if path.is_dir() else 0o444)
        elif case == "read-only database":
            paths.db.chmod(0o444)
        before = paths.db.read_bytes()
        app = subprocess.run(as_nobody(python("-m", "app")), cwd=ROOT, env=python_env(home), capture_output=True,
                             text=True, timeout=120)
        cli = subprocess.run(as_nobody(python("-m", "engine.cli", "models", "--json")), cwd=ROOT,
                             env=python_env(home), capture_output=True, text=True, timeout=120)
        assert app.returncode == 1 and cli.returncode == 1, (app.stderr[-1500:], cli.stdout, cli.stderr[-1500:])
        said = json.loads(cli.stdout or cli.stderr)
        if case == "read-only database":
            assert "the database cannot be written" in app.stderr and "permissions" in app.stderr
            assert "cannot be written" in said["error"]
        else:
            assert f"Ember cannot write to its data folder {home}" in app.stderr
            assert said["error"].startswith(f"Ember cannot write to its data folder {home}")
            assert "EMBER_HOME" in said["hint"]
        assert "Traceback" not in app.stderr + cli.stderr and "Unexpected" not in cli.stdout
        assert paths.db.read_bytes() == before
        assert not list(home.glob("ember.db.damaged-*"))
    finally:
        for path in [outer, *outer.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(outer, ignore_errors=True)


# --- the disk fills up ---------------------------------------------------------------------------------
def run_full_disk(tmp_path: Path, *args: str, size: int) -> dict:
    home = tmp_path / "small-disk"
    run = on_small_disk(home, size, python("-m", "tests.support.full_disk_job", *args), python_env(home))
    assert run.result.returncode == 0, (run.method, run.result.stderr[-3000:])
    answer = json.loads(run.result.stdout.strip().splitlines()[-1])
    answer["method"] = run.method
    print(f"disk full by {run.method}: {answer}")  # which of the two ways the test filled the disk
    return answer


def test_a_full_disk_while_saving_a_message_keeps_every_saved_message(tmp_path):
    answer = run_full_disk(tmp_path, "message", size=4_000_000)
    if answer["method"] == "tmpfs":
        assert answer["error"] == "Could not save the message: the disk (or the database) is full."
        assert "Free some disk space" in answer["hint"]
    else:  # EFBIG from the file-size limit reads as an I/O error
        assert answer["error"].startswith("Could not save the message: the disk")
    assert answer["in_transaction"] is False and answer["kept"] is True  # all committed ones, nothing half
    assert answer["saved_after"] is True and answer["integrity"] == "ok"


def test_a_full_disk_while_indexing_stops_the_run_keeps_finished_files_and_the_next_run_goes_on(
        tmp_path, minilm_gguf):
    docs = tmp_path / "docs"
    docs.mkdir()
    rng = random.Random(1)
    words = "harbour tram custard bread river mountain lantern copper violin orchard meadow glacier".split()
    for n in range(20):
        (docs / f"note{n:02d}.txt").write_text("\n\n".join(" ".join(rng.choice(words) for _ in range(120))
                                                           + f" file{n}" for _ in range(4)))
    answer = run_full_disk(tmp_path, "index", str(minilm_gguf), str(docs), size=6_000_000)
    assert answer["error"] is not None and answer["error"].startswith("Could not save the document's chunks: the disk")
    assert answer["half_taken"] == 0  # a document is "indexed" only with its chunks stored
    assert answer["integrity_full"] == "ok"
    assert answer["indexed_when_full"] < 20 and set(answer["statuses_when_full"]) <= {"indexed", "pending"}
    assert answer["second_run_unchanged"] == answer["indexed_when_full"]  # the finished ones are not redone
    assert answer["second_run_indexed"] == 20 - answer["indexed_when_full"]
    assert answer["statuses"] == ["indexed"] and answer["empty"] == [] and answer["failed"] == {}
    assert answer["integrity"] == "ok"


def test_a_full_disk_at_exit_keeps_the_saved_settings_and_leaves_no_half_backup(tmp_path):
    answer = run_full_disk(tmp_path, "exit", size=4_000_000)
    if answer["method"] == "tmpfs":
        assert answer["settings_error"] == "Could not save Ember's settings: No space left on device."
    else:
        assert answer["settings_error"].startswith("Could not save Ember's settings:")
    assert "The settings saved before are kept." in answer["settings_hint"]
    assert answer["settings_intact"] is True and answer["theme"] == "dark"  # the last saved choice
    assert answer["settings_files"] == ["settings.json"]  # no temporary file left behind
    assert answer["backup_error"] is not None
    assert answer["backups_when_full"] == [answer["first_backup"]]  # no half backup that a recovery could take
    assert answer["second_backup_ok"] is True
