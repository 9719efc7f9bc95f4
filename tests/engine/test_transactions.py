"""Transactions compose: BEGIN IMMEDIATE outside, SAVEPOINT inside; a chat import is all or nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from engine.chat import export
from engine.errors import DatabaseError
from engine.paths import EmberPaths
from engine.store.chats import ChatRepository
from engine.store.db import Transaction, connect

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def db_path(ember_home):
    return EmberPaths(ember_home).db


@pytest.fixture
def repo(db_path):
    conn = connect(db_path)
    yield ChatRepository(conn)
    conn.close()


def titles(db_path) -> list[str]:
    """What another connection sees as committed."""
    conn = connect(db_path, migrate=False)
    try:
        return [row[0] for row in conn.execute("SELECT title FROM sessions ORDER BY id")]
    finally:
        conn.close()


def count(db_path, table: str) -> int:
    conn = connect(db_path, migrate=False)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_nested_transactions_commit_together(repo, db_path):
    with Transaction(repo.conn):
        session = repo.create_session("outer")
        user = repo.add_message(session.id, None, "user", "hi")  # add_message's own Transaction nests
        with Transaction(repo.conn):
            repo.add_message(session.id, user.id, "assistant", "hello")
        assert titles(db_path) == []  # nothing is committed until the outermost block ends
        assert repo.conn.in_transaction
    assert not repo.conn.in_transaction
    assert titles(db_path) == ["outer"]
    assert [m.content for m in repo.branch(session.id)] == ["hi", "hello"]


def test_a_caught_inner_failure_rolls_back_only_the_inner_part(repo, db_path):
    with Transaction(repo.conn):
        repo.create_session("kept before")
        with pytest.raises(ValueError):
            with Transaction(repo.conn):
                repo.create_session("undone")
                raise ValueError("inner step failed")
        assert repo.conn.in_transaction  # the outer transaction goes on
        repo.create_session("kept after")
    assert titles(db_path) == ["kept before", "kept after"]


def test_an_outer_failure_rolls_back_everything(repo, db_path):
    with pytest.raises(ValueError):
        with Transaction(repo.conn):
            session = repo.create_session("gone")
            with Transaction(repo.conn):
                repo.add_message(session.id, None, "user", "also gone")
            raise ValueError("outer step failed")
    assert not repo.conn.in_transaction
    assert titles(db_path) == [] and count(db_path, "messages") == 0


def test_a_sqlite_error_inside_rolls_back_and_comes_out_as_database_error(repo, db_path):
    with pytest.raises(DatabaseError) as info:
        with Transaction(repo.conn, "save the test rows"):
            repo.create_session("gone")
            repo.conn.execute("INSERT INTO messages (session_id, role, created_at, updated_at)"
                              " VALUES (1, 'robot', 0, 0)")  # role CHECK
    assert info.value.message.startswith("Could not save the test rows")
    assert titles(db_path) == []


def export_with_messages(n: int, last_role: str = "assistant") -> dict:
    messages = [{"id": i, "parent_id": i - 1 if i else None, "role": "user" if i % 2 == 0 else "assistant",
                 "content": f"message {i}", "status": "complete"} for i in range(n)]
    messages[-1]["role"] = last_role
    return {"format": "ember-chat", "version": 1,
            "session": {"title": "Imported", "current_leaf_id": n - 1}, "messages": messages}


def test_an_import_that_fails_on_its_last_message_leaves_nothing(repo, db_path, monkeypatch):
    repo.create_session("already here")
    # let a role through the file check that the database's CHECK (role IN ...) refuses
    monkeypatch.setattr(export, "ROLES", (*export.ROLES, "tool"))
    with pytest.raises(DatabaseError) as info:
        export.import_json(repo, export_with_messages(6, last_role="tool"))
    assert "CHECK constraint failed" in info.value.message  # the innermost step says what failed
    assert not repo.conn.in_transaction
    assert titles(db_path) == ["already here"]
    assert count(db_path, "messages") == 0
    # the same file without the bad message imports whole
    monkeypatch.undo()
    new_id = export.import_json(repo, export_with_messages(6))
    assert [m.content for m in repo.branch(new_id)] == [f"message {i}" for i in range(6)]


CHILD = """
import json, sys, time
from engine.chat import export
from engine.store.chats import ChatRepository
from engine.store.db import connect

repo = ChatRepository(connect(sys.argv[1]))
add = repo.add_message
def add_then_wait(*args, **kwargs):
    message = add(*args, **kwargs)
    if message.content == "message 100":  # half-way: tell the parent, then wait to be killed
        print("half-way", flush=True)
        time.sleep(60)
    return message
repo.add_message = add_then_wait
export.import_json(repo, json.loads(sys.stdin.readline()))
print("finished", flush=True)
"""


def test_a_process_killed_in_the_middle_of_an_import_leaves_nothing(repo, db_path):
    repo.create_session("already here")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        child.stdin.write(json.dumps(export_with_messages(200)) + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "half-way"
        assert count(db_path, "messages") == 0  # 100 rows written, none committed
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdin.close()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    conn = connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [r[0] for r in conn.execute("SELECT title FROM sessions")] == ["already here"]
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    finally:
        conn.close()
