"""Where a cited passage lies in a text (a PDF page's text layer, a text file's lines), word by word.

A chunk's text was taken from the same file, but not always character for character: whitespace,
line breaks and a Markdown heading's marks differ, and a chunk may start on the previous PDF page or
end on the next one. So both sides become words (runs of letters and digits, case folded) and
difflib finds the runs of words they share. A shared run counts when it is long enough not to be
chance (common words match anywhere), or when it is where a passage cut by a page break must be: the
passage's end at the page's start, or its start at the page's end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

_WORD = re.compile(r"\w+")
MIN_RUN = 4  # shared words in a row that are not chance
MAX_GAP = 3  # words that differ inside a passage (a hyphenated word, a changed digit) still join its runs
FOUND_SHARE = 0.6  # this share of the passage's words found together: the passage is there


@dataclass(frozen=True)
class Word:
    start: int  # offsets in the text
    end: int
    norm: str  # case folded


def words(text: str) -> list[Word]:
    return [Word(m.start(), m.end(), m.group().casefold()) for m in _WORD.finditer(text)]


@dataclass(frozen=True)
class PassageMatch:
    """The runs of the text's words that the passage covers: (first, past the last) word indices."""

    runs: tuple[tuple[int, int], ...]
    matched: int  # how many of the passage's words were found
    total: int  # how many words the passage has

    @property
    def share(self) -> float:
        return self.matched / self.total if self.total else 0.0

    @property
    def found(self) -> bool:
        """Most of the passage is here (a chunk cut by a page break is `found` only on its main page)."""
        return bool(self.runs) and self.share >= FOUND_SHARE


def match_passage(text_words: list[str], passage_words: list[str]) -> PassageMatch:
    """The runs of `text_words` that `passage_words` covers (both already case folded)."""
    if not text_words or not passage_words:
        return PassageMatch((), 0, len(passage_words))
    matcher = SequenceMatcher(None, text_words, passage_words, autojunk=False)
    wanted = min(MIN_RUN, len(passage_words))
    kept = []
    for block in matcher.get_matching_blocks():
        if block.size == 0:
            continue
        continues_here = block.a == 0 and block.b + block.size == len(passage_words)  # the passage's end
        goes_on = block.a + block.size == len(text_words) and block.b == 0  # the passage's start
        if block.size >= wanted or continues_here or goes_on:
            kept.append(block)
    runs: list[list[int]] = []
    previous = None
    for block in kept:
        if (previous is not None and block.a - (previous.a + previous.size) <= MAX_GAP
                and block.b - (previous.b + previous.size) <= MAX_GAP):
            runs[-1][1] = block.a + block.size
        else:
            runs.append([block.a, block.a + block.size])
        previous = block
    return PassageMatch(tuple((a, b) for a, b in runs), sum(block.size for block in kept), len(passage_words))


def locate_passage(text_words: list[str], passage_words: list[str]) -> PassageMatch:
    """Find the passage anywhere in a long text (a file whose lines moved): around its longest shared
    run, so that the matcher compares the passage with a window of about its own size."""
    if not text_words or not passage_words:
        return PassageMatch((), 0, len(passage_words))
    longest = SequenceMatcher(None, text_words, passage_words, autojunk=False).find_longest_match(
        0, len(text_words), 0, len(passage_words))
    if longest.size < min(MIN_RUN, len(passage_words)):
        return PassageMatch((), 0, len(passage_words))
    slack = len(passage_words) // 4 + MAX_GAP
    first = max(0, longest.a - longest.b - slack)
    last = min(len(text_words), longest.a + (len(passage_words) - longest.b) + slack)
    inside = match_passage(text_words[first:last], passage_words)
    return PassageMatch(tuple((a + first, b + first) for a, b in inside.runs), inside.matched, inside.total)
