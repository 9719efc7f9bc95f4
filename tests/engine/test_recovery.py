"""A damaged ember.db loses at most the last session: random bytes, a file cut mid-page, a torn page
and a damaged WAL, each recovered (from the last backup and what the damaged file still holds), the
damaged file kept untouched beside the new one; `ember models` says what to do instead of a trace."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

from engine.paths import EmberPaths
from engine.store.chats import ChatRepository
from engine.store.db import connect
from engine.store.recovery import backup_database, backups_folder, check_or_recover

ROOT = Path(__file__).resolve().parents[2]
PAGE = 4096


def write_chats(paths: EmberPaths, first: int, count: int, replies: int = 3) -> None:
    conn = connect(paths.db)
    repo = ChatRepository(conn)
    for n in range(first, first + count):
        session = repo.create_session(f"Chat {n}")
        parent = None
        for turn in range(replies):
            parent = repo.add_message(session.id, parent, "user" if turn % 2 == 0 else "assistant",
                                      f"message {turn} of chat {n} " + "words " * 60).id
    conn.close()


def titles(paths: EmberPaths) -> set[str]:
    conn = connect(paths.db)
    try:
        return {s.title for s in ChatRepository(conn).list_sessions()}
    finally:
        conn.close()


def integrity(paths: EmberPaths) -> str:
    conn = sqlite3.connect(paths.db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_a_healthy_database_is_left_alone(paths):
    write_chats(paths, 0, 2)
    assert check_or_recover(paths) is None
    assert titles(paths) == {"Chat 0", "Chat 1"}


def test_random_bytes_cost_only_what_came_after_the_last_backup(paths):
    write_chats(paths, 0, 5)
    backup = backup_database(paths)
    assert backup is not None and backup.parent == backups_folder(paths)
    write_chats(paths, 5, 2)  # after the backup: lost with the file
    noise = random.Random(7).randbytes(paths.db.stat().st_size)
    paths.db.write_bytes(noise)
    report = check_or_recover(paths)
    assert report is not None and report.backup == backup
    assert titles(paths) == {f"Chat {n}" for n in range(5)}
    assert report.from_backup["sessions"] == 5 and report.from_backup["messages"] == 15
    assert report.damaged.read_bytes() == noise  # kept as it was, beside the new database
    assert "Recovered 5 chats, 15 messages and 0 library entries" in report.summary() and report.damaged.name in report.summary()
    assert integrity(paths) == "ok"


def test_a_file_cut_mid_page_gives_back_the_backup_and_what_it_still_holds(paths):
    write_chats(paths, 0, 20)
    backup_database(paths)
    write_chats(paths, 20, 20)  # after the backup: only the damaged file has these
    data = paths.db.read_bytes()
    paths.db.write_bytes(data[: int(len(data) * 0.85) + PAGE // 3])  # the end cut off, a page cut in two
    report = check_or_recover(paths)
    assert report is not None and report.backup is not None
    recovered = titles(paths)
    assert {f"Chat {n}" for n in range(20)} <= recovered <= {f"Chat {n}" for n in range(40)}
    assert report.from_damaged.get("sessions", 0) == len(recovered) - 20 > 0  # later chats read from the file
    assert integrity(paths) == "ok"


def test_a_torn_page_costs_the_rows_on_it_and_no_more(paths):
    write_chats(paths, 0, 60)
    conn = sqlite3.connect(paths.db)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    message_root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'").fetchone()[0]
    conn.close()
    with open(paths.db, "r+b") as f:  # a page in the middle of the file, overwritten
        torn = max(message_root + 3, pages // 2)
        f.seek((torn - 1) * PAGE)
        f.write(random.Random(3).randbytes(PAGE))
    report = check_or_recover(paths)
    assert report is not None
    conn = connect(paths.db)
    kept = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    conn.close()
    assert sessions == 60 or kept > 0
    assert kept >= 150  # of 180: a page holds a few of them
    assert integrity(paths) == "ok"


def test_a_damaged_wal_keeps_what_was_checkpointed(paths):
    write_chats(paths, 0, 3)
    writer = connect(paths.db)  # rows still in the WAL (not checkpointed) while it is open
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    ChatRepository(writer).create_session("In the WAL only")
    db_copy, wal_copy = paths.db.read_bytes(), Path(f"{paths.db}-wal").read_bytes()
    writer.close()
    paths.db.write_bytes(db_copy)
    damaged_wal = bytearray(wal_copy)
    damaged_wal[64:200] = random.Random(5).randbytes(136)  # the first frame's bytes: its checksum fails
    Path(f"{paths.db}-wal").write_bytes(bytes(damaged_wal))
    assert check_or_recover(paths) is None  # SQLite drops frames whose checksums fail; the file is sound
    assert {"Chat 0", "Chat 1", "Chat 2"} <= titles(paths)
    assert integrity(paths) == "ok"


def test_backups_are_few_and_only_of_a_sound_file(paths):
    write_chats(paths, 0, 1)
    made = [backup_database(paths, keep=2) for _ in range(4)]
    assert all(made)
    assert sorted(p.name for p in backups_folder(paths).iterdir()) == sorted(p.name for p in made[-2:])


def test_the_cli_says_what_to_do_with_a_damaged_database(paths):
    write_chats(paths, 0, 1)
    paths.db.write_bytes(random.Random(1).randbytes(8192))
    env = {**os.environ, "EMBER_HOME": str(paths.home)}
    result = subprocess.run([sys.executable, "-m", "engine.cli", "models", "--json"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    answer = json.loads(result.stdout or result.stderr)
    assert "damaged" in answer["error"] and "Start the Ember app" in answer["hint"]
    assert "Unexpected" not in result.stdout + result.stderr
