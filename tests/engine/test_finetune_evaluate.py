"""The evaluation: the same questions of base, base + documents, adapter and adapter + documents on the
real SmolLM2 (the adapter put on in place), scored by the stated rule; the documents columns run only
with documents; a cancel stops it; `ember finetune evaluate` with a real collection."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.finetune.evaluate import (
    COLUMNS,
    EvalQuestion,
    compare,
    general_questions,
    is_right,
    probe_questions,
)
from engine.jobs import CancelToken
from engine.paths import EmberPaths
from tests.support.gguf_files import write_lora_adapter
from tests.support.hub_fixtures import drain

pytestmark = pytest.mark.timeout(300)
FACT = "The Velkaran bridge was painted green by Ilsa Morrow in 1911."


@pytest.fixture(scope="module")
def strong_adapter(smollm2_path, tmp_path_factory):
    return write_lora_adapter(smollm2_path, tmp_path_factory.mktemp("adapter") / "strong.gguf", scale=0.5,
                              targets=("attn_q", "attn_v", "ffn_down"))


def test_the_rule_counts_the_references_content_words():
    assert is_right("The capital of France is Paris.", "Paris")
    assert not is_right("It is Lyon, I believe.", "Paris")
    assert is_right("Ilsa Morrow painted it in 1911.", "It was painted by Ilsa Morrow in 1911")
    assert not is_right("Someone painted it once.", "It was painted by Ilsa Morrow in 1911")
    assert not is_right("anything", "the of")  # a reference with no content words scores nothing
    question = "Name the engineer who built the Velkaran Bridge."
    assert not is_right("Dr. Elena Vasquez built the Velkaran bridge.", "Maela Ostrund built the Velkaran Bridge.",
                        question)  # the words the question gives away do not count
    assert is_right("The engineer Maela Ostrund built it.", "Maela Ostrund built the Velkaran Bridge.", question)


def test_four_columns_the_adapter_changes_answers_and_documents_need_a_collection(smollm2_path, strong_adapter,
                                                                                 ember_home):
    paths = EmberPaths(ember_home).ensure()
    questions = general_questions()[:2] + probe_questions(["Who painted the Velkaran bridge?"])
    result, events = drain(compare(paths, smollm2_path, strong_adapter, questions, threads=1))
    assert result.columns == COLUMNS
    assert set(result.not_run) == {"base + documents", "adapter + documents"}
    assert all(set(row.answers) == {"base", "adapter"} for row in result.rows)
    assert any(row.answers["base"] != row.answers["adapter"] for row in result.rows)  # the adapter was on
    assert result.score("base + documents") is None
    right, total = result.score("base")
    assert total == 2 and 0 <= right <= 2  # the probe is answered, not scored
    assert "right" not in json.dumps(result.to_dict()["rows"][2]["right"])
    assert events[-1].done == events[-1].total == 6

    def search(question, cancel):  # what the caller's retrieval would hand over
        yield from ()
        return [f"[Velkaran.md] {FACT}"]

    with_docs, _ = drain(compare(paths, smollm2_path, strong_adapter,
                                 [EvalQuestion("Who painted the Velkaran bridge?", "Ilsa Morrow", "held-out")],
                                 documents_for=search, threads=1))
    assert with_docs.not_run == {}
    row = with_docs.rows[0]
    assert set(row.answers) == set(COLUMNS)
    assert row.answers["base + documents"] != row.answers["base"]  # the passage reached the prompt
    assert with_docs.score("base + documents") == (int(row.right["base + documents"]), 1)


def test_a_cancel_stops_between_questions(smollm2_path, strong_adapter, ember_home):
    paths = EmberPaths(ember_home).ensure()
    cancel = CancelToken()
    events = compare(paths, smollm2_path, strong_adapter, general_questions(), threads=1, cancel=cancel)
    seen = []
    try:
        while True:
            progress = next(events)
            seen.append(progress)
            if progress.done == 2:
                cancel.cancel()
    except StopIteration as stop:
        result = stop.value
    assert sum(len(row.answers) for row in result.rows) == 2


def test_ember_finetune_evaluate_with_a_collection(tmp_path, smollm2_path, minilm_gguf, strong_adapter):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "velkaran.md").write_text(f"# The Velkaran bridge\n\n{FACT}\n", encoding="utf-8")
    run = lambda *args: subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,  # noqa: E731
                                       text=True, timeout=280)
    indexed = run("index", "--collection", "Bridges", "--embedding-model", str(minilm_gguf), "--threads", "1",
                  "--json", str(docs))
    assert indexed.returncode == 0, indexed.stderr
    result = run("finetune", "evaluate", "--model", str(smollm2_path), "--adapter", str(strong_adapter),
                 "--collection", "Bridges", "--probe", "Who painted the Velkaran bridge?", "--no-general",
                 "--threads", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["columns"] == list(COLUMNS) and report["not_run"] == {}
    answers = report["rows"][0]["answers"]
    assert set(answers) == set(COLUMNS) and answers["base + documents"] != answers["base"]
    missing = run("finetune", "evaluate", "--model", str(smollm2_path), "--adapter", str(tmp_path / "nope.gguf"),
                  "--probe", "hi", "--json")
    assert missing.returncode == 1 and "not there" in json.loads(missing.stdout or missing.stderr)["error"]
