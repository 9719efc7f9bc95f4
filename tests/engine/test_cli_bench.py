"""`ember bench` as a user runs it: the real embedding host scores the kept and draft pairs (never the dropped
ones), as a table or one JSON object; with --model the real SmolLM2 writes new drafts first, under
the home lock; nothing to score, an unknown collection and a held lock exit 1 with the reason."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.paths import EmberPaths
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository
from engine.store.lock import HomeLock
from engine.store.qa_repo import QARepository
from tests.engine.test_rag_bench import pair_for, topics

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def seeded(ember_home, embedding_client, minilm_gguf):
    """""Topics" with three kept pairs, one draft and one dropped (and a chunk without any); "Empty" with none."""
    conn = connect(EmberPaths(ember_home).db)
    try:
        collection, chunks = topics(conn, embedding_client, minilm_gguf, ["sourdough", "chess", "espresso", "cats",
                                                                        "marathon"])
        qa = QARepository(conn)
        pairs = qa.add_pairs(collection.id, [
            pair_for(chunks["sourdough"], "/topics/sourdough.txt", "sourdough starter flour water"),
            pair_for(chunks["chess"], "/topics/chess.txt", "castling king rook squares"),
            pair_for(chunks["espresso"], "/topics/espresso.txt", "espresso crema bars pressure"),
            pair_for(chunks["cats"], "/topics/cats.txt", "How long do cats sleep?"),
            pair_for(chunks["cats"], "/topics/cats.txt", "Dropped question about kittens?")])
        qa.set_status([p.id for p in pairs[:3]], "kept")
        qa.set_status([pairs[4].id], "dropped")
        DocumentsRepository(conn).create_collection("Empty")
        return [p.id for p in pairs]
    finally:
        conn.close()


def run(capsys, *args):
    code = main(["bench", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_bench_scores_the_pairs_that_are_not_dropped(capsys, seeded):
    code, out, err = run(capsys, "--collection", "Topics", "--threads", "1", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["questions"] == 4 and result["written"] is None and result["included_drafts"]
    assert {p["id"] for p in result["pairs"]} == set(seeded[:4])
    assert all(p["ranks"]["bm25"] == 1 for p in result["pairs"][:3])
    assert set(result["modes"]) == {"hybrid", "bm25", "vector"} and result["winner"] in result["modes"]
    assert set(result["modes"]["bm25"]) == {"recall@1", "recall@3", "recall@5", "recall@10", "mrr"}

    code, out, err = run(capsys, "--collection", "Topics", "--threads", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["mode", "recall@1", "recall@3", "recall@5", "recall@10", "MRR"]
    assert [line.split()[0] for line in lines[1:4]] == ["hybrid", "bm25", "vector"]
    assert sum("<- winner" in line for line in lines) == 1 and "on 4 questions" in lines[4]


def test_nothing_to_score_an_unknown_collection_and_a_held_lock_exit_1(capsys, seeded, smollm2_path, ember_home):
    code, out, _ = run(capsys, "--collection", "Empty", "--json")
    assert code == 1 and "no questions" in json.loads(out)["error"]
    code, _, err = run(capsys, "--collection", "Empty")
    assert code == 1 and "no questions" in err and "hint:" in err
    code, out, _ = run(capsys, "--collection", "Nope", "--json")
    assert code == 1 and "no collection" in json.loads(out)["error"]
    code, out, _ = run(capsys, "--collection", "Topics", "--model", str(smollm2_path), "--pairs", "0", "--json")
    assert code == 1 and "between 1 and" in json.loads(out)["error"]
    code, out, _ = run(capsys, "--collection", "Topics", "--model", "/no/such.gguf", "--json")
    assert code == 1 and "does not exist" in json.loads(out)["error"]
    with HomeLock(EmberPaths(ember_home).lock).acquire("the test"):
        code, out, _ = run(capsys, "--collection", "Topics", "--model", str(smollm2_path), "--json")
    assert code == 1 and "in use" in json.loads(out)["error"]


@pytest.mark.slow
def test_bench_with_a_model_writes_drafts_then_scores_them_too(capsys, seeded, smollm2_path, ember_home):
    code, out, err = run(capsys, "--collection", "Topics", "--model", str(smollm2_path), "--pairs", "1",
                         "--threads", "1", "--json")
    assert code == 0, out + err
    result = json.loads(out)
    conn = connect(EmberPaths(ember_home).db)
    try:
        drafts = QARepository(conn).list_pairs(1, ("draft",))
    finally:
        conn.close()
    assert result["written"] == len(drafts) - 1 and result["questions"] == 4 + result["written"]
    assert {p.id for p in drafts} <= {p["id"] for p in result["pairs"]}
