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
