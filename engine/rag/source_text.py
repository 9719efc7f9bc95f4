"""A text-like file (text, code, Markdown) read for the source viewer: its lines, and the cited passage's.

The bytes are decoded as the indexer decoded them (text.decode_text), so line numbers agree with
the citation's. Pure Python on a file the indexer already read: it runs in the app, on a worker.
A file too big to show whole is shown as a window of lines around the citation, and an endless line
(minified code) is cut, so the viewer never gets more text than it can lay out quickly.

The file may have changed since it was indexed: the passage is looked for at the cited lines, then
anywhere in the file (its lines moved); `found` and `moved` say which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.rag.errors import DocumentTooBig
from engine.rag.files import MAX_TEXT_FILE_BYTES, MiB, display_name, read_bytes
from engine.rag.passage_match import PassageMatch, locate_passage, match_passage, words
from engine.rag.text import decode_text, split_lines

# The viewer's text box takes about 25 ms of the UI thread per million characters (more would stall
# the window), so a file with more lines or characters than these is shown as a window around the citation.
MAX_SHOWN_LINES = 10_000
MAX_SHOWN_CHARS = 1_000_000
CONTEXT_LINES = 1_000  # lines shown above and below the cited ones in a window
MAX_LINE_CHARS = 5_000  # a longer line is cut (with " …") in the view
NEAR_LINES = 3  # the cited lines are looked at first, with this many lines around them (a small edit above)
MAX_SEARCH_CHARS = 4_000_000  # a passage that moved is looked for in files up to this size
CUT_MARK = " …"


@dataclass(frozen=True)
class SourceText:
    path: str
    encoding: str
    lines: tuple[str, ...]  # the lines shown (all of the file's, or a window of them)
    first_line: int  # the file's number of lines[0] (1-based)
    total_lines: int  # the file's
    passage_lines: tuple[int, int] | None  # where the passage is now (else the cited lines), file numbers
    found: bool  # the passage is in the file
    moved: bool  # ... but at other lines than the citation says

    @property
    def whole(self) -> bool:
        return self.first_line == 1 and len(self.lines) == self.total_lines


def read_source_text(path: str | Path, line_start: int | None, line_end: int | None, passage: str) -> SourceText:
    """The file's lines for the viewer, decoded as the indexer did; where `passage` is in them.

    Raises the file's DocumentError (missing, unreadable, not text, over the indexer's size limit).
    """
    path = Path(path)
    try:
        data = read_bytes(path, MAX_TEXT_FILE_BYTES)
    except DocumentTooBig as exc:
        raise DocumentTooBig(f"{display_name(path)} is larger than {MAX_TEXT_FILE_BYTES // MiB} MB now, too big to "
                             "show here.", "Open it in the system viewer.", path=str(path)) from exc
    text, encoding = decode_text(data, path)
    del data
    lines = split_lines(text)
    del text
    cited = _cited(line_start, line_end, len(lines))
    where, found = _find(lines, cited, passage)
    moved = found and cited is not None and where != cited
    first, last = _window(lines, where or cited)
    shown = tuple(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + CUT_MARK
                  for line in lines[first - 1:last])
    return SourceText(path=str(path), encoding=encoding, lines=shown, first_line=first, total_lines=len(lines),
                      passage_lines=where or cited, found=found, moved=moved)


def _cited(start: int | None, end: int | None, total: int) -> tuple[int, int] | None:
    """The cited lines clipped to the file (None when the citation has none, or all of them are gone)."""
    if start is None:
        return None
    end = end if end is not None and end >= start else start
    if start > total:
        return None
    return max(1, start), min(end, total)


def _find(lines: list[str], cited: tuple[int, int] | None, passage: str) -> tuple[tuple[int, int] | None, bool]:
    """(the passage's lines, found): at the cited lines if it is there, else wherever it is now."""
    passage_words = [word.norm for word in words(passage)]
    if not passage_words:
        return cited, cited is not None
    if cited is not None:
        first = max(1, cited[0] - NEAR_LINES)
        last = min(len(lines), cited[1] + NEAR_LINES)
        numbered = _numbered_words(lines, first, last)
        near = match_passage([word for word, _ in numbered], passage_words)
        if near.found:
            start, end = _lines_of(near, numbered)
            return (cited if cited[0] <= start and end <= cited[1] else (start, end)), True
    if sum(len(line) for line in lines) > MAX_SEARCH_CHARS:
        return None, False
    numbered = _numbered_words(lines, 1, len(lines))
    match = locate_passage([word for word, _ in numbered], passage_words)
    if not match.found:
        return None, False
    return _lines_of(match, numbered), True


def _numbered_words(lines: list[str], first: int, last: int) -> list[tuple[str, int]]:
    """Each word of lines first..last (1-based, inclusive) with its line number."""
    return [(word.norm, number) for number in range(first, last + 1) for word in words(lines[number - 1])]


def _lines_of(match: PassageMatch, numbered: list[tuple[str, int]]) -> tuple[int, int]:
    return numbered[match.runs[0][0]][1], numbered[match.runs[-1][1] - 1][1]


def _window(lines: list[str], around: tuple[int, int] | None) -> tuple[int, int]:
    """The lines to show (1-based, inclusive): all of them when the file is small enough, else a window
    of CONTEXT_LINES around `around` (the top of the file when there is nothing to centre on), which
    is made narrower until its text fits too."""
    total = len(lines)
    if total <= MAX_SHOWN_LINES and sum(min(len(line), MAX_LINE_CHARS) for line in lines) <= MAX_SHOWN_CHARS:
        return 1, total
    start, end = around or (1, 1)
    context = CONTEXT_LINES
    while True:
        first, last = max(1, start - context), min(total, end + context)
        size = sum(min(len(line), MAX_LINE_CHARS) for line in lines[first - 1:last])
        if size <= MAX_SHOWN_CHARS or context == 0:
            return first, last
        context //= 2
