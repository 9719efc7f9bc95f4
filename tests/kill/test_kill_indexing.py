"""`ember index` killed at random points (while the embedding model starts, between documents, in the
middle of one), with a document edited between two runs: every document indexed before a kill keeps its
chunks exactly, the index stays whole (each chunk with its vector and full-text row; PRAGMA integrity_check
ok), no embedding process outlives the indexer, and the next run goes on from where the last one stopped
instead of starting over, ending with every document indexed and the edited one's new text found."""

from __future__ import annotations

import json
import subprocess

import pytest

from engine.paths import EmberPaths
from tests.kill.killing import integrity, kill_points, none_left, read_only, sigkill, start, wait_for

pytestmark = pytest.mark.timeout(240)
KILLS = 4
NOTES = 24


def indexed(db) -> dict[str, list[tuple[int, str]]]:
    """path -> [(chunk id, text)] of every document whose status is `indexed`."""
    if not db.exists():
        return {}
    conn = read_only(db)
    try:
        rows = conn.execute("SELECT d.path, c.id, c.text FROM documents d JOIN chunks c ON c.document_id = d.id"
                            " WHERE d.status = 'indexed' ORDER BY d.path, c.id").fetchall()
    except Exception as exc:  # killed before the schema was written
        if "no such table" in str(exc):
            return {}
        raise
    finally:
        conn.close()
    found: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        found.setdefault(row["path"], []).append((row["id"], row["text"]))
    return found


def index_whole(db) -> None:
    from engine.store.db import connect
    from engine.store.documents_repo import DocumentsRepository

    assert integrity(db) == "ok"
    conn = connect(db, migrate=False)
    try:
        report = DocumentsRepository(conn).integrity_report()
    finally:
        conn.close()
    assert report.ok, report


def test_indexing_killed_at_random_points_goes_on_where_it_stopped(tmp_path, minilm_gguf, ember_home):
    rng = kill_points("indexing")
    docs = tmp_path / "notes"
    docs.mkdir()
    for i in range(NOTES):
        (docs / f"note{i:02d}.md").write_text(f"# Note {i}\n\n" + f"Topic {i} is about item number {i}. " * 60,
                                              encoding="utf-8")
    edited = docs / "note00.md"  # indexed first, edited after round 1
    db = EmberPaths(ember_home).db
    command = ["-m", "engine.cli", "index", "--collection", "Notes", "--embedding-model", str(minilm_gguf),
               "--threads", "1", str(docs)]
    for round_ in range(KILLS):
        before = indexed(db)
        process = start(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if round_ == 0:  # early: the home opening, the embedding model starting, the first files
            try:
                process.wait(timeout=rng.uniform(0.1, 2.0))
            except subprocess.TimeoutExpired:
                pass
            where = "early"
        else:  # after a random number of documents more
            goal = min(NOTES - 1, len(before) + rng.randint(1, 6))
            wait_for(lambda goal=goal: len(indexed(db)) >= goal, 120, f"{goal} documents indexed", process)
            pause = rng.uniform(0.0, 0.4)  # into the next document: parsed, embedded or being written
            try:
                process.wait(timeout=pause)
            except subprocess.TimeoutExpired:
                pass
            where = f"{pause:.2f} s after {goal} documents"
        assert sigkill(process) < 0, f"round {round_}: the indexer ended by itself: {process.stderr.read()[-2000:]}"
        process.stderr.close()
        assert not none_left(ember_home), "the embedding process outlived the killed indexer"
        after = indexed(db)
        print(f"round {round_}: killed {where}; {len(after)} of {NOTES} indexed", flush=True)
        if db.exists():
            index_whole(db)
        for path, chunks in before.items():
            if path != str(edited.resolve()) or round_ < 2:  # the edited note is indexed again from round 2
                assert after.get(path) == chunks, f"{path}: its indexed chunks changed or went"
        if round_ == 1:  # a user edits a note between two runs
            edited.write_text("# Note 0\n\nThe lighthouse of Quintara is painted green and white.\n",
                              encoding="utf-8")

    run = start([*command[:-1], "--json", str(docs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = run.communicate(timeout=180)
    assert run.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert report["unchanged"] + report["indexed"] == NOTES and report["failed"] == {}
    assert report["unchanged"] >= len(after) - 1  # what was indexed stayed indexed (the edited note aside)
    index_whole(db)
    final = indexed(db)
    assert len(final) == NOTES
    assert [text for _, text in final[str(edited.resolve())]] and all(
        "Quintara" in text for _, text in final[str(edited.resolve())])
    ask = start(["-m", "engine.cli", "ask", "--collection", "Notes", "--k", "1", "--threads", "1", "--json",
                 "What colour is the lighthouse of Quintara?"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
    out, err = ask.communicate(timeout=120)
    assert ask.returncode == 0, err[-2000:]
    assert json.loads(out)["chunks"][0]["source"] == str(edited.resolve())
