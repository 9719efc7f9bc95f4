"""A text-like file read for the source viewer: decoded as the indexer decodes it, the cited passage found
at its lines (or where it moved, or not at all), and a huge file shown as a window around the citation."""

from __future__ import annotations

import pytest

from engine.rag import source_text
from engine.rag.errors import DocumentError, DocumentTooBig, NotText
from engine.rag.loaders import load_document
from engine.rag.source_text import read_source_text

NOTES = ["# Notes", "", "Intro paragraph about nothing much.", "",
         "The crème brûlée recipe needs four egg yolks,", "a vanilla pod and cream warmed slowly.", "",
         "Serve cold."]


def cited_section(path, containing: str):
    """The indexer's own section for the passage: its text and lines, as a citation holds them."""
    return next(s for s in load_document(path).sections if containing in s.text)


def test_the_cited_lines_of_a_cp1252_file_are_found_with_the_indexers_decoding(tmp_path):
    path = tmp_path / "recipe.txt"
    path.write_bytes("\r\n".join(NOTES).encode("cp1252"))
    section = cited_section(path, "crème")
    shown = read_source_text(path, *section.lines, section.text)
    assert shown.encoding == load_document(path).encoding == "cp1252"
    assert shown.whole and shown.lines[4] == "The crème brûlée recipe needs four egg yolks,"
    assert shown.passage_lines == section.lines == (5, 6) and shown.found and not shown.moved


def test_a_passage_whose_lines_moved_is_found_at_its_new_lines(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("\n".join(NOTES), encoding="utf-8")
    section = cited_section(path, "crème")
    path.write_text("\n".join(["New line one.", "New line two.", "", *NOTES]), encoding="utf-8")
    shown = read_source_text(path, *section.lines, section.text)
    assert shown.found and shown.moved and shown.passage_lines == (8, 9)
    path.write_text("\n".join([f"Added line {n}." for n in range(40)] + NOTES), encoding="utf-8")
    far = read_source_text(path, *section.lines, section.text)  # beyond the cited lines' neighbourhood
    assert far.found and far.moved and far.passage_lines == (45, 46)


def test_a_passage_that_is_gone_is_not_found_and_the_cited_lines_are_kept(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("\n".join(NOTES), encoding="utf-8")
    section = cited_section(path, "crème")
    path.write_text("\n".join(NOTES[:4] + ["Completely different text now sits here instead.", "x", "", "y"]))
    shown = read_source_text(path, *section.lines, section.text)
    assert not shown.found and not shown.moved and shown.passage_lines == (5, 6)


def test_a_huge_file_is_shown_as_a_window_around_the_cited_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(source_text, "MAX_SHOWN_LINES", 1000)
    monkeypatch.setattr(source_text, "CONTEXT_LINES", 100)
    path = tmp_path / "big.log"
    lines = [f"entry {n} status ok" for n in range(1, 5001)]
    lines[3000 - 1] = "entry 3000 the disk controller reported a parity error"
    path.write_text("\n".join(lines) + "\n" + "x" * 20_000, encoding="utf-8")
    shown = read_source_text(path, 3000, 3000, "the disk controller reported a parity error")
    assert not shown.whole and shown.total_lines == 5001
    assert (shown.first_line, len(shown.lines)) == (2900, 201)
    assert shown.lines[3000 - shown.first_line] == lines[2999] and shown.found
    end = read_source_text(path, 5001, 5001, "")
    assert end.lines[-1] == "x" * source_text.MAX_LINE_CHARS + source_text.CUT_MARK  # an endless line is cut


def test_missing_binary_and_too_big_files_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(DocumentError, match="“gone.txt” cannot be read") as caught:
        read_source_text(tmp_path / "gone.txt", 1, 2, "x")
    assert "still exists" in caught.value.hint
    (tmp_path / "photo.txt").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(NotText):
        read_source_text(tmp_path / "photo.txt", 1, 1, "")
    monkeypatch.setattr(source_text, "MAX_TEXT_FILE_BYTES", 100)
    (tmp_path / "grown.txt").write_text("y" * 200)
    with pytest.raises(DocumentTooBig, match="too big to show here") as big:
        read_source_text(tmp_path / "grown.txt", 1, 1, "")
    assert big.value.hint == "Open it in the system viewer."
