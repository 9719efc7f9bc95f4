"""Moving Ember's data to another folder copies everything, points the copy's paths at its new place,
leaves the old home as it was, and is used from the next start; a cut-off move leaves no half home."""

from __future__ import annotations

import json
import sqlite3

import pytest

from engine.errors import Cancelled, InvalidInput
from engine.jobs import CancelToken
from engine.paths import EmberPaths, default_home, read_home_pointer
from engine.preferences import load_preferences, save_preferences
from engine.store.chats import ChatRepository
from engine.store.db import connect
from engine.store.models_repo import ModelRepository
from engine.store.move_home import move_home


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    """Where the pointer to a moved home lives, kept inside the test."""
    folder = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


@pytest.fixture
def home(tmp_path) -> EmberPaths:
    """A home with a downloaded model, a chat using an adapter, a fine-tune job and settings."""
    paths = EmberPaths(tmp_path / "old-home").ensure()
    model = paths.models / "owner" / "repo" / "tiny.gguf"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"GGUF" + bytes(range(256)) * 4000)
    adapter = paths.adapters / "mine.gguf"
    adapter.write_bytes(b"GGUF adapter")
    conn = connect(paths.db)
    ModelRepository(conn).upsert(str(model), model.stat().st_size, model.stat().st_mtime, "hub")
    chats = ChatRepository(conn)
    session = chats.create_session("Kept")
    chats.update_session(session.id, model_path=str(model), adapter_path=str(adapter))
    chats.add_message(session.id, None, "user", "Hello")
    conn.close()
    save_preferences(paths, embedding_model=str(paths.models / "owner" / "embed.gguf"))
    job = paths.home / "finetune" / "job-1" / "job.json"
    job.parent.mkdir(parents=True)
    job.write_text(json.dumps({"base_model": str(model), "notes": "kept as it is"}))
    return paths


def run(job) -> list:
    return list(job)


def snapshot(folder) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_moved_home_has_everything_pointing_at_its_new_place(home, tmp_path, config_dir, monkeypatch):
    before = snapshot(home.home)
    target = tmp_path / "bigger-disk" / "Ember"
    steps = run(move_home(home, target, CancelToken()))
    assert steps[-1].done == steps[-1].total and "next start" in steps[-1].message

    moved = EmberPaths(target)
    new_model = str(moved.models / "owner" / "repo" / "tiny.gguf")
    assert (moved.models / "owner" / "repo" / "tiny.gguf").read_bytes() == (
        home.models / "owner" / "repo" / "tiny.gguf").read_bytes()
    conn = sqlite3.connect(moved.db)
    assert [row[0] for row in conn.execute("SELECT path FROM models")] == [new_model]
    assert conn.execute("SELECT model_path, adapter_path FROM sessions").fetchone() == (
        new_model, str(moved.adapters / "mine.gguf"))
    assert conn.execute("SELECT content FROM messages").fetchone() == ("Hello",)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert load_preferences(moved).embedding_model == str(moved.models / "owner" / "embed.gguf")
    job = json.loads((target / "finetune" / "job-1" / "job.json").read_text())
    assert job == {"base_model": new_model, "notes": "kept as it is"}

    assert snapshot(home.home) == before  # the old home is untouched, to delete once checked
    assert read_home_pointer() == target
    monkeypatch.delenv("EMBER_HOME", raising=False)
    assert default_home() == target  # used from the next start
    monkeypatch.setenv("EMBER_HOME", str(home.home))
    assert default_home() == home.home  # EMBER_HOME still wins


def test_a_cancelled_move_leaves_no_half_home_and_no_pointer(home, tmp_path, config_dir):
    cancel = CancelToken()
    target = tmp_path / "elsewhere"
    with pytest.raises(Cancelled):
        for step in move_home(home, target, cancel):
            if step.done:  # part of the way through the files
                cancel.cancel()
    assert not target.exists()
    assert not list(tmp_path.glob("*.ember-partial"))
    assert read_home_pointer() is None


@pytest.mark.parametrize("where, says", [
    (lambda home, tmp: home.home / "inside", "inside the current one"),
    (lambda home, tmp: home.home, "already"),
    (lambda home, tmp: tmp, "contain the current one"),
    (lambda home, tmp: "relative/folder", "full path"),
])
def test_targets_that_cannot_work_are_refused_with_what_to_do(home, tmp_path, config_dir, where, says):
    with pytest.raises(InvalidInput, match=says):
        run(move_home(home, where(home, tmp_path), CancelToken()))
    assert read_home_pointer() is None


def test_a_folder_with_files_in_it_is_refused(home, tmp_path, config_dir):
    target = tmp_path / "used"
    target.mkdir()
    (target / "theirs.txt").write_text("not Ember's")
    with pytest.raises(InvalidInput, match="not empty"):
        run(move_home(home, target, CancelToken()))
    assert (target / "theirs.txt").read_text() == "not Ember's"
