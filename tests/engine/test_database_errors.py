"""SQLite failures reach the user as DatabaseError saying what happened and what to do, never raw sqlite3 errors."""

from __future__ import annotations

import sqlite3

import pytest

from engine.chat.conversation import Conversation, ModelIdentity
from engine.errors import DatabaseError
from engine.paths import EmberPaths
from engine.store.chats import ChatRepository
from engine.store.db import Transaction, connect

pytestmark = pytest.mark.timeout(60)

ROOM_PAGES = 4  # how far a "full" database may still grow


@pytest.fixture
def db_path(ember_home):
    return EmberPaths(ember_home).db


def fill_up(conn: sqlite3.Connection, room_pages: int = ROOM_PAGES) -> None:
    """Let this connection's database grow only `room_pages` pages more: a real SQLITE_FULL, as on a full disk."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + room_pages}")


def fill_completely(conn: sqlite3.Connection) -> None:
    """Next to no room left: no new page, and the free space inside the messages' pages used up with
    filler rows (roots of the same chat, outside its shown branch). A new row needs a few dozen bytes
    more than its text, so the last filler then grows in ever smaller steps to take the rest. A few
    bytes may still be free (in the chats' search index too), so a reply's first words can fit."""
    fill_up(conn, room_pages=0)
    size = 2000
    while size:
        try:
            conn.execute("INSERT INTO messages (session_id, role, content, created_at, updated_at)"
                         " SELECT session_id, 'user', ?, 0, 0 FROM messages LIMIT 1", ("x" * size,))
        except sqlite3.OperationalError:
            size = 0 if size <= 16 else size // 2
    size = 64
    while size:
        try:
            conn.execute("UPDATE messages SET content = content || ? WHERE id = (SELECT max(id) FROM messages)",
                         ("x" * size,))
        except sqlite3.OperationalError:
            size //= 2


def test_a_full_database_makes_add_message_raise_a_readable_error_and_keeps_what_was_saved(db_path):
    conn = connect(db_path)
    repo = ChatRepository(conn)
    session = repo.create_session("Notes")
    saved = [repo.add_message(session.id, None, "user", "saved before the disk filled up").id]
    fill_up(conn)
    with pytest.raises(DatabaseError) as info:
        for i in range(100):
            saved.append(repo.add_message(session.id, saved[-1], "user", f"note {i} " + "x" * 8000).id)
    assert info.value.message == "Could not save the message: the disk (or the database) is full."
    assert "Free some disk space" in info.value.hint
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert not conn.in_transaction
    conn.close()

    conn = connect(db_path, migrate=False)
    repo = ChatRepository(conn)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [m.id for m in repo.messages(session.id)] == saved  # every committed message, nothing half-written
    assert repo.get_session(session.id).current_leaf_id == saved[-1]
    repo.add_message(session.id, saved[-1], "user", "room again")  # once there is space, saving works
    conn.close()


class FullDiskConversation(Conversation):
    """The reply's own connection (opened inside stream_reply) finds the database full."""

    def _repo(self) -> ChatRepository:
        repo = super()._repo()
        fill_completely(repo.conn)
        return repo


def test_a_full_database_while_saving_a_streamed_reply_raises_database_error(db_path, host_client):
    conn = connect(db_path)
    repo = ChatRepository(conn)
    session = repo.create_session("Chat", sampling={"max_tokens": 300, "seed": 3})
    pending = Conversation(db_path).prepare_send(session.id, "Tell me a long story", ModelIdentity("m.gguf"))
    messages = [{"role": "user", "content": "Tell me a long story"}]
    received = []
    with pytest.raises(DatabaseError) as info:
        for event in FullDiskConversation(db_path).stream_reply(pending, host_client, messages):
            received.append(event)
    assert "is full" in info.value.message and "Free some disk space" in info.value.hint
    assert received and all(e.stats is None for e in received)  # the text reached the view
    user, reply = repo.branch(session.id)
    assert user.content == "Tell me a long story"  # committed before: intact
    # What an early save kept (a few words may fit, how many depends on the machine's speed) is a
    # prefix of what was shown; the reply stays "streaming", as after a crash.
    shown = "".join(e.text for e in received)
    assert reply.id == pending.assistant_message_id and reply.status == "streaming"
    assert len(reply.content) < len(shown) and shown.startswith(reply.content)
    assert repo.recover_streaming() == 1  # the next start marks it interrupted, as after a crash
    conn.close()


def test_a_read_only_database_says_to_check_permissions(db_path):
    connect(db_path).close()
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
    with pytest.raises(DatabaseError) as info:
        ChatRepository(conn).create_session("x")
    conn.close()
    assert info.value.message.startswith("Could not create the chat: the database cannot be written")
    assert "permissions" in info.value.hint


def test_a_busy_database_says_to_wait(db_path):
    holder, other = connect(db_path), connect(db_path)
    other.execute("PRAGMA busy_timeout = 0")
    try:
        with Transaction(holder):
            with pytest.raises(DatabaseError) as info:
                with Transaction(other, "save the chat"):
                    pass
    finally:
        holder.close()
        other.close()
    assert info.value.message == "Could not save the chat: the database is busy with another writer."
    assert "Wait a moment" in info.value.hint


def test_a_damaged_database_file_is_refused_with_a_hint(db_path):
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db_path.write_bytes(b"this is not an SQLite database " * 200)
    with pytest.raises(DatabaseError) as info:
        connect(db_path)
    assert "the database file is damaged" in info.value.message
    assert "Start the Ember app" in info.value.hint and "nothing is deleted" in info.value.hint
