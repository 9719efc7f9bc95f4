"""Fine-tune data: files and collections read, examples per mode, duplicates, the held-out split, general text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import Cancelled
from engine.finetune.chat_data import chat_files, read_chat_jsonl, read_pairs_jsonl
from engine.finetune.dataset import (
    Dataset,
    Example,
    build_dataset,
    chat_examples,
    load_general,
    qa_examples,
    text_examples,
)
from engine.finetune.errors import BadTrainingData, DatasetEmpty
from engine.finetune.qa_writer import QAPair, parse_pairs, write_qa_pairs
from engine.finetune.sources import collection_passages, read_text_files, split_passages
from engine.jobs import CancelToken
from engine.rag.chunker import Chunk
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository

FACT = "The Velkaran Bridge over the river Oss was built in 1847 by the engineer Maela Ostrund."


def test_text_and_markdown_files_and_folders_are_read_and_the_rest_named(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text(f"# Bridges\n\n{FACT}\n\nIt is 210 metres long.", encoding="utf-8")
    (folder / "b.txt").write_text("Caf\xe9 au lait, cr\xe8me br\xfbl\xe9e, na\xefve fa\xe7ade", encoding="utf-16")
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes("cr\xe8me br\xfbl\xe9e".encode("cp1252"))
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\t\n", encoding="utf-8")
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    report = read_text_files([folder, blank, pdf, legacy, tmp_path / "gone.txt"])
    assert report.files_read == 2
    texts = [p.text for p in report.passages]
    assert any(FACT in t for t in texts)
    assert any("crème brûlée" in t for t in texts)  # UTF-16 with its byte-order mark
    assert "not UTF-8" in report.problems[str(legacy)]  # not guessed here: the Documents pipeline does that
    assert "whitespace" in report.problems[str(blank)]
    assert "collection" in report.problems[str(pdf)]
    assert "does not exist" in report.problems[str(tmp_path / "gone.txt")]


def test_long_text_is_split_into_passages_within_the_limit():
    text = "\n\n".join(f"Paragraph {i}. " + "Words go on here. " * 20 for i in range(10))
    passages = split_passages(text + "\n\n" + "x" * 2500, max_chars=500)
    assert all(len(p) <= 500 for p in passages)
    assert "Paragraph 0." in passages[0] and "Paragraph 9." in "".join(passages)
    assert sum(p.count("x") for p in passages) == 2500  # nothing lost


def test_a_collections_chunks_are_its_passages(tmp_path):
    conn = connect(tmp_path / "ember.db")
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Bridges")
    document = repo.upsert_document(collection.id, str(tmp_path / "bridges.md"), sha256="a" * 64, size=10,
                                    mtime=1.0, kind="markdown")
    chunks = [Chunk(text=FACT, heading_path=(), token_count=20, line_start=1, line_end=2),
              Chunk(text="It is 210 metres long.", heading_path=(), token_count=7, line_start=3, line_end=3)]
    repo.replace_document_chunks(document.id, chunks, np.eye(2, 4, dtype=np.float32))
    report = collection_passages(repo, collection.id)
    conn.close()
    assert [p.text for p in report.passages] == [FACT, "It is 210 metres long."]
    assert report.passages[0].source == "bridges.md, lines 1-2"


def test_duplicates_go_a_held_out_part_is_kept_and_general_text_is_mixed_in():
    pairs = [(f"Question number {i}?", f"Answer {i}.") for i in range(20)]
    pairs += [("question number 3?", "ANSWER   3."), ("", "no question"), ("Why?", "")]
    dataset = build_dataset("qa", qa_examples(pairs), held_out_fraction=0.1, general_fraction=0.2, seed=1)
    counts = dataset.counts
    assert (counts.given, counts.duplicates, counts.too_short) == (23, 1, 2)
    assert counts.held_out == 2 and counts.train == 18 + counts.general
    assert abs(counts.general / counts.train - 0.2) <= 1 / counts.train  # general text is a fifth of training
    user_keys = {e.dedupe_key() for e in dataset.train if not e.general} | {e.dedupe_key() for e in dataset.held_out}
    assert len(user_keys) == 20  # every kept pair is in exactly one part
    assert not {e.dedupe_key() for e in dataset.held_out} & {e.dedupe_key() for e in dataset.train}
    assert all(e.kind == "chat" for e in dataset.train)  # general text of the mode's kind
    again = build_dataset("qa", qa_examples(pairs), held_out_fraction=0.1, general_fraction=0.2, seed=1)
    assert again.content_hash() == dataset.content_hash()  # the same data, the same split


def test_raw_mode_mixes_general_paragraphs_and_drops_scraps():
    passages = read_text_files([]).passages
    examples = text_examples(passages) + [Example("text", text=FACT), Example("text", text="Page 3")]
    dataset = build_dataset("raw", examples, held_out_fraction=0.0, general_fraction=0.5)
    assert dataset.counts.too_short == 1
    assert [e.text for e in dataset.train if not e.general] == [FACT]
    assert [e.kind for e in dataset.train if e.general] == ["text"]


def test_general_text_is_shipped_with_both_kinds():
    general = load_general()
    assert sum(e.kind == "chat" for e in general) >= 40 and sum(e.kind == "text" for e in general) >= 10


def test_nothing_to_train_on_is_refused_with_the_counts(tmp_path):
    blank = tmp_path / "blank.md"
    blank.write_text("\n   \n", encoding="utf-8")
    report = read_text_files([blank])
    with pytest.raises(DatasetEmpty) as refused:
        build_dataset("raw", text_examples(report.passages), problems=report.problems)
    assert "blank.md" in refused.value.message and "whitespace" in refused.value.message
    with pytest.raises(DatasetEmpty) as refused:
        build_dataset("qa", qa_examples([("Why?", " "), ("How?", "")]))
    assert "2 too short or without an answer" in refused.value.message


def test_chat_jsonl_is_read_and_bad_lines_are_named_by_number(tmp_path):
    good = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                         {"role": "assistant", "content": "Hello."}]}
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(good) + "\n", encoding="utf-8")
    conversations = read_chat_jsonl(path)
    dataset = build_dataset("chat", chat_examples(conversations, "chats.jsonl"))
    assert dataset.counts.duplicates == 1 and dataset.train[0].messages[0]["role"] == "system"

    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([json.dumps(good), "{not json", json.dumps({"messages": [{"role": "user", "content": "Hi"}]}),
                              json.dumps({"messages": [{"role": "robot", "content": "x"}]}), json.dumps(good)]),
                   encoding="utf-8")
    with pytest.raises(BadTrainingData) as refused:
        read_chat_jsonl(bad)
    message = refused.value.message
    assert "3 bad lines" in message
    assert "line 2: not JSON" in message and "line 3: no assistant message" in message and "line 4: message 1" in message


def test_reviewed_pairs_are_read_and_every_bad_line_is_counted_though_ten_are_named(tmp_path):
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps({"question": "Who built the bridge?", "answer": "Ada."}), ""]
    lines += ["{not json"] * 6 + [json.dumps({"question": "No answer?"})] * 6
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadTrainingData) as refused:
        read_pairs_jsonl(path)
    message = refused.value.message
    assert "12 bad lines" in message and "(and 2 more)" in message
    assert "line 3: not JSON" in message and 'line 9: needs a "question" and an "answer"' in message
    assert "line 13" not in message and '"question"' in refused.value.hint

    path.write_text(lines[0] + "\n\n" + json.dumps({"question": "When?", "answer": "In 1890."}) + "\n", encoding="utf-8")
    assert read_pairs_jsonl(path) == [("Who built the bridge?", "Ada."), ("When?", "In 1890.")]


@pytest.mark.parametrize("reader", [read_pairs_jsonl, read_chat_jsonl])
def test_a_missing_file_or_a_folder_given_as_training_data_is_refused_with_a_clear_message(tmp_path, reader):
    for given, reason in ((tmp_path / "gone.jsonl", "No such file"), (tmp_path, "Is a directory")):
        with pytest.raises(BadTrainingData) as refused:
            reader(given)
        assert str(given) in refused.value.message and reason in refused.value.message
        assert "JSONL file that exists" in refused.value.hint


def test_the_preview_shows_the_first_examples_and_counts():
    dataset = build_dataset("qa", qa_examples([QAPair(f"Who built bridge {i}?", f"Engineer {i}.", "b.md")
                                               for i in range(12)]))
    preview = dataset.preview(first=3)
    assert len(preview.first) == 3 and preview.first[0].startswith("user: Who built bridge")
    assert preview.counts.train + preview.counts.held_out == 12
    assert 0 < preview.min_chars <= preview.mean_chars <= preview.max_chars


def test_the_dataset_is_written_and_read_back(tmp_path):
    dataset = build_dataset("qa", qa_examples([(f"Q{i}?", f"A{i}.") for i in range(10)]))
    dataset.write(tmp_path / "dataset")
    again = Dataset.read(tmp_path / "dataset", "qa")
    assert again.train == dataset.train and again.held_out == dataset.held_out
    assert again.content_hash() == dataset.content_hash()


def test_pairs_are_parsed_from_a_models_reply_in_its_usual_shapes():
    reply = ("Here are the questions:\n1. Q: Who built the Velkaran Bridge?\nA: Maela Ostrund.\n\n"
             "2. Question: When was it built?\nAnswer: In 1847,\nover two years.\nQ: How long is it?\nA:")
    pairs = parse_pairs(reply, "bridges.md")
    assert [(p.question, p.answer) for p in pairs] == [
        ("Who built the Velkaran Bridge?", "Maela Ostrund."), ("When was it built?", "In 1847, over two years.")]
    assert pairs[0].source == "bridges.md"


def test_the_chat_model_writes_pairs_and_a_cancel_stops_it(host_client):
    from engine.finetune.sources import Passage

    passages = [Passage(FACT, "bridges.md")]
    events = write_qa_pairs(host_client, passages, per_passage=2, max_tokens=96)
    progress = []
    while True:
        try:
            progress.append(next(events))
        except StopIteration as done:
            pairs = done.value
            break
    assert progress[0].total == 1 and progress[-1].done == 1
    assert isinstance(pairs, list) and all(p.question and p.answer and p.source == "bridges.md" for p in pairs)
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        list(write_qa_pairs(host_client, passages, cancel=cancel))


def test_a_folder_given_as_chat_data_stands_for_its_jsonl_files_and_an_empty_one_is_refused(tmp_path):
    (tmp_path / "b.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not chat data", encoding="utf-8")
    (tmp_path / "older").mkdir()
    (tmp_path / "older" / "a.jsonl").write_text("", encoding="utf-8")
    assert chat_files(tmp_path) == [tmp_path / "b.jsonl", tmp_path / "older" / "a.jsonl"]
    assert chat_files(tmp_path / "b.jsonl") == [tmp_path / "b.jsonl"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadTrainingData) as refused:
        chat_files(empty)
    assert str(empty) in refused.value.message and ".jsonl" in refused.value.hint
