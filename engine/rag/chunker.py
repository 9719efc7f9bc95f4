"""Chunking: a parsed document's sections cut into pieces that fit the embedding model.

Budgets are in tokens of the embedding model itself (`count_tokens`, see engine/rag/tokens.py), so a
chunk never gets cut off by the model. The rules, in order:
- A heading change starts a new chunk: a chunk never mixes two parts of a document. A heading with
  nothing under it but deeper headings ("# Guide" then "## Setup") is not a chunk of its own: it
  leads the next chunk, whose text then reads "Guide / Setup / ..." as the page does.
- So does a new PDF page: a chunk lies on one page, so its citation opens the page that holds it.
- Whole paragraphs (blank-line separated) are packed into a chunk up to `chunk_tokens`.
- A paragraph longer than that is split at sentence ends, and a sentence still too long at spaces.
- Each chunk after the first under the same heading starts with up to `overlap_tokens` from the end of
  the previous one (whole words, from a sentence start when there is one), so a passage cut in two
  can still be found whole.
Each chunk knows where it came from: the pages it spans (PDF) or the lines (text files).

A section is any object with `text`, `page` (1-based, or None), `lines` ((first, last), 1-based, or
None) and `heading_path` (engine.rag.document.Section has them). Line numbers inside a section are
counted from its `lines[0]`, so its text must keep the file's line breaks.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from engine.errors import InvalidInput

CountTokens = Callable[[Sequence[str]], list[int]]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")  # one or more blank lines
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    text: str
    heading_path: tuple[str, ...]
    token_count: int  # the sum of its pieces' counts: exact where pieces meet at spaces (WordPiece)
    page_start: int | None = None
    page_end: int | None = None
    line_start: int | None = None
    line_end: int | None = None


@dataclass(frozen=True)
class _Piece:
    """A stretch [start, end) of one section's text: a paragraph, a sentence or some words of one."""

    section: object
    start: int
    end: int
    paragraph: int  # pieces of the same paragraph are joined by a space, paragraphs by a blank line
    tokens: int

    @property
    def text(self) -> str:
        return self.section.text[self.start:self.end]

    def lines(self) -> tuple[int, int] | None:
        lines = self.section.lines
        if lines is None:
            return None
        text = self.section.text
        first = lines[0] + text.count("\n", 0, self.start)
        last = lines[0] + text.count("\n", 0, self.end)
        return min(first, lines[1]), min(last, lines[1])


def _spans(text: str, start: int, end: int, separator: re.Pattern) -> list[tuple[int, int]]:
    """The non-blank stretches of text[start:end] between separator matches, stripped, as offsets."""
    spans, at = [], start
    for match in itertools.chain(separator.finditer(text, start, end), [None]):
        stop = match.start() if match else end
        piece = text[at:stop]
        left = len(piece) - len(piece.lstrip())
        right = len(piece.rstrip())
        if right > left:
            spans.append((at + left, at + right))
        if match:
            at = match.end()
    return spans


def chunk_sections(sections: Iterable, count_tokens: CountTokens, chunk_tokens: int = 256,
                   overlap_tokens: int = 32) -> list[Chunk]:
    """The document's chunks in reading order (see the module's docstring for the rules)."""
    if chunk_tokens < 4:
        raise InvalidInput(f"A chunk of {chunk_tokens} tokens is too small; use at least 4.")
    if not 0 <= overlap_tokens <= chunk_tokens // 2:
        raise InvalidInput(f"The overlap must be between 0 and half a chunk ({chunk_tokens // 2} tokens).")
    pieces = _pieces(list(sections), count_tokens, chunk_tokens)
    groups = [(key, list(group)) for key, group in itertools.groupby(
        pieces, key=lambda p: (tuple(p.section.heading_path), p.section.page))]
    chunks: list[Chunk] = []
    carried: list[_Piece] = []
    for number, ((heading, page), group) in enumerate(groups):
        following = groups[number + 1][0] if number + 1 < len(groups) else None
        if following and _only_titles(group, heading) and following[1] == page \
                and following[0][:len(heading)] == heading and len(following[0]) > len(heading):
            carried += group  # a title with only subsections under it leads the next chunk
            continue
        chunks.extend(_pack(carried + group, heading, count_tokens, chunk_tokens, overlap_tokens))
        carried = []
    return chunks


def _only_titles(group: list[_Piece], heading: tuple[str, ...]) -> bool:
    """Whether a heading's group holds nothing but the heading's own title."""
    return bool(heading) and all(p.text.strip() == heading[-1].strip() for p in group)


def _pieces(sections: list, count_tokens: CountTokens, budget: int) -> list[_Piece]:
    """Every paragraph as one piece, or cut into sentences or words where it is over the budget."""
    paragraphs = [(section, start, end) for section in sections
                  for start, end in _spans(section.text, 0, len(section.text), _PARAGRAPH_BREAK)]
    counts = count_tokens([section.text[start:end] for section, start, end in paragraphs]) if paragraphs else []
    pieces: list[_Piece] = []
    for number, ((section, start, end), tokens) in enumerate(zip(paragraphs, counts, strict=True)):
        if tokens <= budget:
            pieces.append(_Piece(section, start, end, number, tokens))
            continue
        sentences = _spans(section.text, start, end, _SENTENCE_END)
        sentence_counts = count_tokens([section.text[s:e] for s, e in sentences])
        for (s, e), n in zip(sentences, sentence_counts, strict=True):
            if n <= budget:
                pieces.append(_Piece(section, s, e, number, n))
            else:
                pieces.extend(_split_words(section, s, e, n, number, count_tokens, budget))
    return pieces


def _split_words(section, start: int, end: int, tokens: int, paragraph: int, count_tokens: CountTokens,
                 budget: int) -> list[_Piece]:
    """A sentence over the budget cut at spaces into runs of words that fit. Each run's length is guessed
    from the sentence's tokens per word and then checked with `count_tokens` (shortened until it fits)."""
    text = section.text
    words = _spans(text, start, end, _SPACE)
    per_word = tokens / len(words)
    pieces, first = [], 0
    while first < len(words):
        size = max(1, min(len(words) - first, int(budget / per_word)))
        while True:
            s, e = words[first][0], words[first + size - 1][1]
            n = count_tokens([text[s:e]])[0]
            if n <= budget or size == 1:
                break
            size = max(1, min(size - 1, int(size * budget / n)))
        if n <= budget:
            pieces.append(_Piece(section, s, e, paragraph, n))
        else:  # one "word" over the budget (a long URL, a table row without spaces): cut its characters
            parts = -(-n // budget) + 1
            step = -(-(e - s) // parts)
            cuts = [(a, min(a + step, e)) for a in range(s, e, step)]
            for (a, b), m in zip(cuts, count_tokens([text[a:b] for a, b in cuts]), strict=True):
                pieces.append(_Piece(section, a, b, paragraph, m))
        first += size
    return pieces


def _pack(pieces: list[_Piece], heading: tuple[str, ...], count_tokens: CountTokens, budget: int,
          overlap_tokens: int) -> list[Chunk]:
    """Pieces under one heading packed greedily into chunks, each after the first led by an overlap."""
    chunks: list[Chunk] = []
    current: list[_Piece] = []
    for piece in pieces:
        if current and sum(p.tokens for p in current) + piece.tokens > budget:
            chunks.append(_chunk(current, heading))
            lead = _overlap(current[-1], count_tokens, overlap_tokens)
            current = [lead] if lead is not None and lead.tokens + piece.tokens <= budget else []
        current.append(piece)
    if current:
        chunks.append(_chunk(current, heading))
    return chunks


def _overlap(piece: _Piece, count_tokens: CountTokens, limit: int) -> _Piece | None:
    """The longest run of whole words at the end of `piece` within `limit` tokens, moved on to the first
    sentence start inside it when there is one. Only from the last piece of the chunk, to stay simple."""
    if limit <= 0:
        return None
    text = piece.section.text
    words = _spans(text, piece.start, piece.end, _SPACE)
    size = min(len(words), limit)  # a word is at least one token
    while size > 0:
        start = words[-size][0]
        n = piece.tokens if start == piece.start else count_tokens([text[start:piece.end]])[0]
        if n <= limit:
            break
        size = min(size - 1, int(size * limit / n))
    if size <= 0:
        return None
    sentence_start = next((m.end() for m in _SENTENCE_END.finditer(text, start, piece.end)
                           if start < m.end() < piece.end), None)
    if sentence_start is not None:
        start = sentence_start
        n = count_tokens([text[start:piece.end]])[0]
    return _Piece(piece.section, start, piece.end, piece.paragraph, n)


def _chunk(pieces: list[_Piece], heading: tuple[str, ...]) -> Chunk:
    text = pieces[0].text
    for before, piece in itertools.pairwise(pieces):
        text += (" " if piece.paragraph == before.paragraph else "\n\n") + piece.text
    pages = [p.section.page for p in pieces if p.section.page is not None]
    lines = [span for p in pieces if (span := p.lines()) is not None]
    return Chunk(
        text=text, heading_path=heading, token_count=sum(p.tokens for p in pieces),
        page_start=min(pages) if pages else None, page_end=max(pages) if pages else None,
        line_start=min(a for a, _ in lines) if lines else None, line_end=max(b for _, b in lines) if lines else None,
    )
