"""ember.db: migrations, WAL, the message tree, full-text search, crash recovery, the home lock."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from engine.errors import DatabaseTooNew, HomeLocked, InvalidInput, NotFound
from engine.paths import EmberPaths
from engine.store import db as store_db
from engine.store.chats import ChatRepository
from engine.store.db import SCHEMA_VERSION, connect, user_version
from engine.store.lock import HomeLock


@pytest.fixture
def repo(ember_home):
    conn = connect(EmberPaths(ember_home).db)
    yield ChatRepository(conn)
    conn.close()


def test_new_database_is_wal_and_current(ember_home):
    conn = connect(ember_home / "ember.db")
    assert user_version(conn) == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_database_from_a_newer_version_is_refused(ember_home):
    path = ember_home / "ember.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    raw.close()
    with pytest.raises(DatabaseTooNew) as info:
        connect(path)
    assert "newer" in info.value.hint


def test_database_is_copied_before_a_migration(ember_home, monkeypatch):
    path = ember_home / "ember.db"
    conn = connect(path)
    ChatRepository(conn).create_session("keep me")
    conn.close()

    def add_column(c):
        c.execute("ALTER TABLE sessions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")

    monkeypatch.setattr(store_db, "MIGRATIONS", store_db.MIGRATIONS + [add_column])
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    conn = connect(path)
    assert user_version(conn) == SCHEMA_VERSION + 1
    backup = path.with_name(f"ember.db.bak-v{SCHEMA_VERSION}")
    assert backup.exists()
    old = sqlite3.connect(backup)
    assert old.execute("SELECT title FROM sessions").fetchone()[0] == "keep me"
    old.close()
    conn.close()


def test_sessions_newest_first_rename_delete_restore(repo):
    a = repo.create_session("first")
    b = repo.create_session("second")
    repo.add_message(a.id, None, "user", "bump a")  # activity moves a to the top
    assert [s.id for s in repo.list_sessions()] == [a.id, b.id]
    repo.update_session(b.id, title="  renamed  ")
    assert repo.get_session(b.id).title == "renamed"
    with pytest.raises(InvalidInput):
        repo.update_session(b.id, title="   ")
    repo.delete_session(a.id)
    assert [s.id for s in repo.list_sessions()] == [b.id]
    repo.restore_session(a.id)
    assert {s.id for s in repo.list_sessions()} == {a.id, b.id}
    repo.delete_session(a.id)
    assert repo.purge_deleted() == 1
    with pytest.raises(NotFound):
        repo.get_session(a.id)


def test_branches_are_kept_and_switchable(repo):
    s = repo.create_session()
    u1 = repo.add_message(s.id, None, "user", "hi")
    a1 = repo.add_message(s.id, u1.id, "assistant", "hello")
    a2 = repo.add_message(s.id, u1.id, "assistant", "hey there")  # regenerated
    assert [m.id for m in repo.branch(s.id)] == [u1.id, a2.id]
    assert [m.id for m in repo.children(s.id, u1.id)] == [a1.id, a2.id]
    repo.set_current_leaf(s.id, repo.newest_leaf_under(a1.id))
    assert [m.content for m in repo.branch(s.id)] == ["hi", "hello"]
    repo.delete_message(a1.id)
    assert repo.get_session(s.id).current_leaf_id == u1.id


def test_full_text_search_finds_words_and_prefixes(repo):
    s = repo.create_session("Cooking")
    repo.add_message(s.id, None, "user", "How do I bake sourdough bread?")
    other = repo.create_session("Other")
    repo.add_message(other.id, None, "user", "Tell me about rockets")
    hits = repo.search("sourdo")
    assert [h.session_id for h in hits] == [s.id]
    assert "[sourdough]" in hits[0].snippet
    assert repo.search('"; DROP TABLE messages; --') == []  # user text is never FTS syntax
    repo.delete_session(s.id)
    assert repo.search("sourdough") == []


def test_streaming_rows_become_interrupted_on_recovery(repo):
    s = repo.create_session()
    u = repo.add_message(s.id, None, "user", "q")
    a = repo.add_message(s.id, u.id, "assistant", "partial answ", status="streaming")
    assert repo.recover_streaming() == 1
    got = repo.get_message(a.id)
    assert got.status == "interrupted" and got.content == "partial answ"


def test_home_lock_is_exclusive_and_released(ember_home):
    paths = EmberPaths(ember_home)
    with HomeLock(paths.lock).acquire("Ember window"):
        with pytest.raises(HomeLocked) as info:
            HomeLock(paths.lock).acquire()
        assert "Ember window" in info.value.message
        code = subprocess.run([sys.executable, "-c", (
            "import sys; from engine.store.lock import HomeLock\n"
            f"try:\n HomeLock({str(paths.lock)!r}).acquire()\nexcept Exception as e:\n print(e); sys.exit(1)"
        )], capture_output=True, text=True)
        assert code.returncode == 1 and "in use" in code.stdout
    HomeLock(paths.lock).acquire().release()  # free again
