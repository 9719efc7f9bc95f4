"""`ember index` and `ember ask` as scripts use them: real processes, the real embedding and chat models."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.engine.test_rag_parse import write_pdf

pytestmark = pytest.mark.timeout(240)

PAGES = ["The harbour of Lisbon was rebuilt after the earthquake of 1755.",
         "Tram 28 climbs through the Alfama district past the cathedral.",
         "Pastel de nata is a custard tart first baked by monks in Belém."]


def ember(*args):
    result = subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=200)
    return result.returncode, result.stdout, result.stderr


def test_index_then_ask_with_citations(tmp_path, minilm_gguf, smollm2_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "lisbon.pdf", PAGES)
    (docs / "notes.md").write_text("# Trains\n\nThe night train from Vienna reaches Venice at dawn.\n",
                                   encoding="utf-8")
    code, out, err = ember("index", "--collection", "Travel", "--embedding-model", str(minilm_gguf),
                           "--threads", "1", "--json", str(docs))
    assert code == 0, err
    report = json.loads(out)
    assert report["indexed"] == 2 and report["failed"] == {}

    code, out, err = ember("index", "--collection", "Travel", "--threads", "1", "--json", str(docs))
    assert code == 0, err
    assert json.loads(out)["unchanged"] == 2 and json.loads(out)["indexed"] == 0  # incremental

    code, out, err = ember("ask", "--collection", "Travel", "--k", "3", "--threads", "1", "--json",
                           "Which tram climbs through Alfama?")
    assert code == 0, err
    result = json.loads(out)
    best = result["chunks"][0]
    assert best["source"] == str((docs / "lisbon.pdf").resolve()) and best["page"] == 2
    assert {"text", "score", "bm25_rank", "vector_rank"} <= set(best)
    lines = next(c for c in result["chunks"] if c["source"].endswith("notes.md"))
    assert lines["lines"][0] >= 1 and "page" not in lines

    code, out, err = ember("ask", "--collection", "Travel", "--k", "2", "--threads", "1", "--max-tokens", "48",
                           "--model", str(smollm2_path), "--json", "Which tram climbs through Alfama?")
    assert code == 0, err
    answered = json.loads(out)
    assert answered["answer"].strip()
    assert all(c["n"] in (1, 2) and c["source"] for c in answered["citations"])


def test_bad_input_says_what_to_do(tmp_path, minilm_gguf):
    code, out, _ = ember("index", "--collection", "New", "--json", str(tmp_path))
    assert code == 1 and "--embedding-model" in json.loads(out)["hint"]
    (tmp_path / "only.bin").write_bytes(b"\x00\x01")
    code, out, _ = ember("index", "--collection", "New", "--embedding-model", str(minilm_gguf), "--json",
                         str(tmp_path))
    assert code == 1 and "No documents" in json.loads(out)["error"]
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    code, out, err = ember("index", "--collection", "New", "--embedding-model", str(minilm_gguf), "--threads", "1",
                           str(broken))
    assert code == 1 and "broken.pdf" in err and "nothing could be indexed" in err
    code, out, _ = ember("ask", "--collection", "Nope", "--json", "anything")
    assert code == 1 and "no collection" in json.loads(out)["error"]


def test_an_indexer_killed_half_way_continues_where_it_stopped(tmp_path, minilm_gguf, ember_home):
    import os
    import signal
    import time

    from engine.paths import EmberPaths
    from engine.store.db import connect
    from engine.store.documents_repo import DocumentsRepository

    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(40):
        (docs / f"note{i:02d}.md").write_text(f"# Note {i}\n\n" + f"Topic {i} is about item number {i}. " * 60,
                                              encoding="utf-8")
    command = [sys.executable, "-m", "engine.cli", "index", "--collection", "Many", "--embedding-model",
               str(minilm_gguf), "--threads", "1", str(docs)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = EmberPaths(ember_home).db

    def indexed() -> int:
        if not db.exists():
            return 0
        conn = connect(db, migrate=False)
        try:
            return conn.execute("SELECT COUNT(*) FROM documents WHERE status = 'indexed'").fetchone()[0]
        except Exception:
            return 0
        finally:
            conn.close()

    deadline = time.monotonic() + 120
    while indexed() < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = indexed()
    assert 3 <= before < 40, "the kill should land half way"
    conn = connect(db, migrate=False)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert DocumentsRepository(conn).integrity_report().ok  # no chunk without its vector or FTS row
    conn.close()
    code, out, err = ember("index", "--collection", "Many", "--threads", "1", "--json", str(docs))
    assert code == 0, err
    report = json.loads(out)
    assert report["unchanged"] >= before and report["unchanged"] + report["indexed"] == 40
