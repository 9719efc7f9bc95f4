"""The engine parts the Chat page adds (engine/chat/export.py, engine/chat/presets.py): no Qt here.

They live beside the app tests because they were written with the Chat page."""

from __future__ import annotations

import json

import pytest

from engine.chat.export import import_json, to_json, to_markdown, write_export
from engine.chat.presets import builtin_presets, delete_preset, list_presets, save_preset
from engine.errors import InvalidInput
from engine.jobs import GenerationStats
from engine.paths import EmberPaths
from engine.store.chats import ChatRepository, Provenance
from engine.store.db import connect


@pytest.fixture
def repo(ember_home):
    conn = connect(EmberPaths(ember_home).ensure().db)
    yield ChatRepository(conn)
    conn.close()


def branching_chat(repo: ChatRepository) -> int:
    session = repo.create_session("Tree", system_prompt="Be kind.", sampling={"temperature": 0.3}, context_length=2048)
    user = repo.add_message(session.id, None, "user", "Hi")
    prov = Provenance("m.gguf", "cd" * 32, "Q8_0", "th", {"temperature": 0.3}, 5)
    repo.add_message(session.id, user.id, "assistant", "Hello!", provenance=prov,
                     stats=GenerationStats("stop", completion_tokens=2, ttft_s=0.1, seed=5))
    second = repo.add_message(session.id, user.id, "assistant", "Hey", status="streaming", provenance=prov)
    repo.update_message(second.id, status="error", error="the model process stopped")
    return session.id


def test_json_round_trip_keeps_every_branch_and_provenance(repo, tmp_path):
    original = branching_chat(repo)
    path = write_export(repo, original, tmp_path / "tree.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["format"], data["version"]) == ("ember-chat", 1) and len(data["messages"]) == 3
    copy = import_json(repo, path)
    a, b = to_json(repo, original), to_json(repo, copy)
    strip = [{k: v for k, v in m.items() if k not in ("id", "parent_id")} for m in a["messages"]]
    assert strip == [{k: v for k, v in m.items() if k not in ("id", "parent_id")} for m in b["messages"]]
    assert [m["parent_id"] is None for m in b["messages"]] == [True, False, False]
    assert b["messages"][2]["error"] == "the model process stopped"
    assert b["session"]["sampling"] == {"temperature": 0.3} and b["session"]["context_length"] == 2048
    assert repo.get_session(copy).current_leaf_id == b["messages"][2]["id"]
    assert "**Assistant:** _(error)_" in to_markdown(repo, copy)


def test_a_streaming_reply_is_exported_as_interrupted(repo):
    session = repo.create_session("Live")
    user = repo.add_message(session.id, None, "user", "Hi")
    repo.add_message(session.id, user.id, "assistant", "Hal", status="streaming")
    assert to_json(repo, session.id)["messages"][1]["status"] == "interrupted"


@pytest.mark.parametrize("content, says", [
    ("not json", "not a JSON file"),
    ('{"format": "other"}', "not an Ember chat export"),
    ('{"format": "ember-chat", "version": 2}', "version 2"),
    ('{"format": "ember-chat", "version": 1, "session": {}}', "no message list"),
    ('{"format": "ember-chat", "version": 1, "session": {}, "messages": [{"id": 1, "role": "robot", "content": ""}]}',
     "Message 1"),
    ('{"format": "ember-chat", "version": 1, "session": {}, "messages": [{"id": 1, "parent_id": 9, "role": "user",'
     ' "content": "x"}]}', "not before it"),
    ('{"format": "ember-chat", "version": 1, "session": {}, "messages": [{"id": 1, "role": "user", "content": "x"},'
     ' {"id": 1, "role": "user", "content": "y"}]}', "id of another"),
    ('{"format": "ember-chat", "version": 1, "session": {"context_length": -5}, "messages": []}', "context length"),
])
def test_import_refuses_damaged_files_with_a_clear_message(repo, tmp_path, content, says):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput, match=says) as caught:
        import_json(repo, path)
    assert caught.value.hint
    assert repo.list_sessions() == []  # nothing half-imported


def test_presets_builtin_and_the_users_own(repo):
    builtin = builtin_presets()
    assert any(p.name == "Concise" for p in builtin) and all(p.builtin for p in builtin)
    save_preset(repo.conn, "  Pirate   talk ", "Arr.")
    save_preset(repo.conn, "Pirate talk", "Arr, matey.")  # same name: replaced
    mine = [p for p in list_presets(repo.conn) if not p.builtin]
    assert [(p.name, p.system_prompt) for p in mine] == [("Pirate talk", "Arr, matey.")]
    with pytest.raises(InvalidInput, match="Ember's own"):
        save_preset(repo.conn, "concise", "x")
    with pytest.raises(InvalidInput, match="needs a name"):
        save_preset(repo.conn, "   ", "x")
    with pytest.raises(InvalidInput):
        delete_preset(repo.conn, "Concise")
    delete_preset(repo.conn, "Pirate talk")
    assert [p for p in list_presets(repo.conn) if not p.builtin] == []
