"""The text a fine-tune learns from: plain text and Markdown files read here, or a collection's chunks.

Other formats (PDF, DOCX, EPUB, HTML) are read by the Documents pipeline, whose parser sits in the
rag layer, which finetune may not import: index them into a collection, then train from it. Each
file that cannot be used is named with its reason; the others still count.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.store.documents_repo import DocumentsRepository

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text", ".rst")
MAX_FILE_BYTES = 20 * 2**20
PASSAGE_CHARS = 1200  # about 300 tokens: long enough for a fact and its context, short enough for 512-token examples


@dataclass(frozen=True)
class Passage:
    """A piece of a document: what raw mode trains on and what the Q/A writer reads."""

    text: str
    source: str  # the file (with its page or lines when known)


@dataclass
class SourceReport:
    passages: list[Passage] = field(default_factory=list)
    files_read: int = 0
    problems: dict[str, str] = field(default_factory=dict)  # path -> why it was not used


def read_text_files(paths: Iterable[str | Path], passage_chars: int = PASSAGE_CHARS) -> SourceReport:
    """Passages of every text or Markdown file under these paths (folders are searched)."""
    report = SourceReport()
    for path in _expand(paths, report):
        try:
            text = _read_text(path)
        except ValueError as exc:
            report.problems[str(path)] = str(exc)
            continue
        if not text.strip():
            report.problems[str(path)] = "it is empty or holds only whitespace"
            continue
        report.files_read += 1
        report.passages.extend(Passage(piece, path.name) for piece in split_passages(text, passage_chars))
    return report


def collection_passages(repo: DocumentsRepository, collection_id: int) -> SourceReport:
    """A collection's indexed chunks, document by document, in order."""
    report = SourceReport()
    for document in repo.list_documents(collection_id):
        chunks = repo.chunks_of(document.id)
        if not chunks:
            if document.error:
                report.problems[document.path] = document.error
            continue
        report.files_read += 1
        for chunk in chunks:
            where = (f", page {chunk.page_start}" if chunk.page_start else
                     f", lines {chunk.line_start}-{chunk.line_end}" if chunk.line_start else "")
            if chunk.text.strip():
                report.passages.append(Passage(chunk.text.strip(), f"{Path(document.path).name}{where}"))
    return report


def split_passages(text: str, max_chars: int = PASSAGE_CHARS) -> list[str]:
    """Paragraphs packed into passages of at most `max_chars` (a longer paragraph is cut at sentences)."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if paragraph:
            pieces.extend(_cut(paragraph, max_chars))
    passages: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 2 + len(piece) > max_chars:
            passages.append(current)
            current = piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        passages.append(current)
    return passages


def _cut(paragraph: str, max_chars: int) -> list[str]:
    if len(paragraph) <= max_chars:
        return [paragraph]
    out, current = [], ""
    for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
        while len(sentence) > max_chars:  # one endless sentence: cut it by length
            if current:
                out.append(current)
                current = ""
            out.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        if current and len(current) + 1 + len(sentence) > max_chars:
            out.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        out.append(current)
    return out


def _expand(paths: Iterable[str | Path], report: SourceReport) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES))
        elif not path.exists():
            report.problems[str(path)] = "it does not exist"
        elif path.suffix.lower() not in TEXT_SUFFIXES:
            report.problems[str(path)] = ("not a text or Markdown file; add it to a document collection "
                                          "(which reads PDF, DOCX, EPUB, HTML) and train from the collection")
        else:
            found.append(path)
    return found


def _read_text(path: Path) -> str:
    """UTF-8 (with or without a byte-order mark) or UTF-16 with one. Guessing a legacy encoding is the
    Documents pipeline's job (it has the rules that keep cp1252 from being read as cp1250)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"it is {size / 2**20:.0f} MB; split it into files under {MAX_FILE_BYTES // 2**20} MB")
    data = path.read_bytes()
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data:
        raise ValueError("it holds binary data, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text; save it as UTF-8, or add it to a document collection "
                         "(which recognises other encodings) and train from the collection") from None
