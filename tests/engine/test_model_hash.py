"""A model's SHA-256 reaches the replies made with its file whenever the library learns it (schema v2)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from engine.chat.conversation import Conversation, ModelIdentity
from engine.library.library import Library
from engine.store.chats import ChatRepository, Provenance
from engine.store.db import connect
from tests.support.hub_fixtures import drain

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def folder(tmp_path):
    """Two small model files (not real GGUF: hashing does not care; the library lists them with the reason)."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "a.gguf").write_bytes(b"model A " * 100_000)
    (folder / "b.gguf").write_bytes(b"model B " * 100_000)
    return folder


def scan(paths, folder) -> dict:
    conn = connect(paths.db)
    try:
        return {e.name: e for e in Library(paths, conn).scan([folder])}
    finally:
        conn.close()


def compute(paths, entry) -> str | None:
    """Library.compute_sha256 on a connection of its own, as the hashing worker does."""
    conn = connect(paths.db, migrate=False)
    try:
        digest, _ = drain(Library(paths, conn).compute_sha256(entry))
        return digest
    finally:
        conn.close()


def reply_hash(paths, message_id: int) -> str | None:
    conn = connect(paths.db, migrate=False)
    try:
        return ChatRepository(conn).get_message(message_id).provenance.model_sha256
    finally:
        conn.close()


def send(paths, entry, text="hi") -> int:
    """A turn through Conversation, with the model's identity as the app has it while the hash is unknown."""
    conn = connect(paths.db)
    try:
        session = ChatRepository(conn).create_session()
    finally:
        conn.close()
    identity = ModelIdentity(entry.name, None, "Q4_0", path=entry.path)
    return Conversation(paths.db).prepare_send(session.id, text, identity).assistant_message_id


def test_a_reply_gets_the_hash_when_the_library_stores_it_even_after_a_restart(paths, folder):
    entries = scan(paths, folder)
    a, b = entries["a.gguf"], entries["b.gguf"]
    reply_a, reply_b = send(paths, a), send(paths, b)
    assert reply_hash(paths, reply_a) is None
    # "restart": every connection above is closed; the hash arrives through new ones
    entries = scan(paths, folder)
    digest = compute(paths, entries["a.gguf"])
    assert digest == hashlib.sha256((folder / "a.gguf").read_bytes()).hexdigest()
    assert reply_hash(paths, reply_a) == digest
    assert reply_hash(paths, reply_b) is None  # another model file's reply is untouched
    conn = connect(paths.db, migrate=False)
    repo = ChatRepository(conn)
    reply = repo.get_message(reply_a)
    assert reply.provenance.model_path == a.path and reply.provenance.model_name == "a.gguf"
    user = repo.get_message(reply.parent_id)
    assert user.provenance.model_sha256 is None  # the user's own message has no model
    conn.close()


def test_a_reply_written_after_the_hash_is_known_takes_it(paths, folder):
    entries = scan(paths, folder)
    digest = compute(paths, entries["a.gguf"])
    # the app's identity may still say "unknown" (the hash arrived on a worker meanwhile)
    reply = send(paths, entries["a.gguf"])
    assert reply_hash(paths, reply) == digest


def test_a_file_changed_before_or_while_it_is_hashed_gets_no_hash(paths, folder):
    entry = scan(paths, folder)["a.gguf"]
    reply = send(paths, entry)
    with open(folder / "a.gguf", "ab") as f:  # changed after the scan: the library row is stale
        f.write(b"more")
    assert compute(paths, entry) is None
    assert reply_hash(paths, reply) is None

    entry = scan(paths, folder)["a.gguf"]  # the library sees the new file
    conn = connect(paths.db, migrate=False)
    hashing = Library(paths, conn).compute_sha256(entry)
    next(hashing)  # one chunk read, then the file changes under it
    with open(folder / "a.gguf", "ab") as f:
        f.write(b"even more")
    digest, _ = drain(hashing)
    conn.close()
    assert digest is None
    assert reply_hash(paths, reply) is None
    assert scan(paths, folder)["a.gguf"].sha256 is None


def test_a_reply_made_with_a_replaced_file_does_not_take_the_new_files_hash(paths, folder):
    entry = scan(paths, folder)["a.gguf"]
    old_reply = send(paths, entry)
    (folder / "a.gguf").write_bytes(b"another model " * 50_000)
    later = time.time() + 5  # the new content is younger than the old reply (whatever the clock's grain)
    os.utime(folder / "a.gguf", (later, later))
    entry = scan(paths, folder)["a.gguf"]
    digest = compute(paths, entry)
    assert digest == hashlib.sha256((folder / "a.gguf").read_bytes()).hexdigest()
    assert reply_hash(paths, old_reply) is None  # made with the file that is gone: no wrong hash


def test_model_path_is_exported_and_files_without_it_still_import(paths, folder):
    from engine.chat.export import import_json, to_json

    conn = connect(paths.db)
    repo = ChatRepository(conn)
    session = repo.create_session("With provenance")
    user = repo.add_message(session.id, None, "user", "q")
    repo.add_message(session.id, user.id, "assistant", "a",
                     provenance=Provenance(model_name="a.gguf", model_path="/models/a.gguf"))
    data = to_json(repo, session.id)
    assert data["format"] == "ember-chat" and data["version"] == 1
    assert data["messages"][1]["provenance"]["model_path"] == "/models/a.gguf"
    copy = import_json(repo, data)
    assert repo.branch(copy)[1].provenance.model_path == "/models/a.gguf"
    for m in data["messages"]:  # an export from before schema v2
        del m["provenance"]["model_path"]
    old = import_json(repo, data)
    assert repo.branch(old)[1].provenance.model_path is None
    conn.close()
