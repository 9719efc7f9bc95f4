"""Markdown: paragraphs with their lines and the headings above them (ATX "# Title" and setext underlines).

A line-based reader, not a renderer: the text stays as written (a model reads Markdown well), and
only what changes the places matters: headings, blank lines, and fenced code blocks, inside which
a "#" line is code and a blank line does not end the block.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from engine.rag.document import HeadingPath, ParsedDocument, Section
from engine.rag.files import MAX_TEXT_FILE_BYTES, read_bytes
from engine.rag.text import decode_text, line_sections, split_lines

_ATX_OPEN = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)")  # only the opening: the rest is cut by hand (linear)
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _atx_heading(line: str) -> tuple[int, str] | None:
    """(level, title) of an ATX heading ("## Title ##"), else None.

    Cut by hand, not by one regular expression: a lazy title before an optional closing "#" run
    backtracks quadratically on a long line of blanks (a 1 MB line would take hours)."""
    opening = _ATX_OPEN.match(line)
    if opening is None:
        return None
    title = line[opening.end():].strip(" \t")
    closing = title.rstrip("#")
    if closing != title and (not closing or closing[-1] in " \t"):  # a closing run after a blank (or alone)
        title = closing.rstrip(" \t")
    return len(opening.group(1)), title


def markdown_sections(lines: list[str]) -> list[Section]:
    sections: list[Section] = []
    headings = HeadingPath()
    block: list[str] = []  # the paragraph (or fenced block) being read
    block_start = 0
    fence = ""  # the opening fence while inside a fenced code block

    def flush() -> None:
        nonlocal block
        if block:
            sections.extend(line_sections(block, block_start, headings.path))
        block = []

    for number, line in enumerate(lines, 1):
        if fence:
            block.append(line)
            if line.strip().startswith(fence):
                fence = ""
                flush()
            continue
        if opening := _FENCE.match(line):
            flush()
            fence, block_start, block = opening.group(1), number, [line]
            continue
        if atx := _atx_heading(line):
            flush()
            level, title = atx
            if title:
                path = headings.enter(level, title)
                sections.append(Section(title, lines=(number, number), heading_path=path))
            continue
        if block and (setext := _SETEXT.match(line)):  # the paragraph above was a heading
            title = " ".join(part.strip() for part in block)
            path = headings.enter(1 if setext.group(1)[0] == "=" else 2, title)
            sections.append(Section(title, lines=(block_start, number), heading_path=path))
            block = []
            continue
        if not line.strip():
            flush()
            continue
        if not block:
            block_start = number
        block.append(line.rstrip())
    flush()
    return sections


def load_markdown(path: Path) -> ParsedDocument:
    data = read_bytes(path, MAX_TEXT_FILE_BYTES)
    text, encoding = decode_text(data, path)
    return ParsedDocument(path=str(path), kind="markdown", sections=markdown_sections(split_lines(text)),
                          encoding=encoding, sha256=hashlib.sha256(data).hexdigest())  # the bytes already read
