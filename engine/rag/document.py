"""ParsedDocument: the text of one file, cut at paragraphs, each piece knowing where it came from.

A `Section` is one paragraph (or one heading, or one piece of an overlong paragraph) with its place:
the PDF page, the line range of a text file, the headings above it. The chunker merges sections
into token-sized chunks and keeps the places for citations. Plain data, JSON-serialisable: it
travels from the parser child to the app as JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_SECTION_CHARS = 4000  # a longer paragraph is cut (at lines, else at spaces) so no chunk must split one


@dataclass(frozen=True)
class Section:
    text: str
    page: int | None = None  # 1-based PDF page
    lines: tuple[int, int] | None = None  # 1-based first and last line (text, Markdown, code)
    heading_path: tuple[str, ...] = ()  # the headings above it, outermost first ("Guide", "Install")

    def to_dict(self) -> dict:
        return {"text": self.text, "page": self.page, "lines": list(self.lines) if self.lines else None,
                "heading_path": list(self.heading_path)}

    @classmethod
    def from_dict(cls, data: dict) -> Section:
        lines = data.get("lines")
        return cls(text=data["text"], page=data.get("page"), lines=(lines[0], lines[1]) if lines else None,
                   heading_path=tuple(data.get("heading_path") or ()))


@dataclass(frozen=True)
class ParsedDocument:
    path: str
    kind: str  # "pdf", "docx", "epub", "markdown", "html", "text", "code"
    sections: list[Section] = field(default_factory=list)
    pages: int | None = None  # PDFs only
    encoding: str | None = None  # the detected encoding of a text file ("utf-8", "cp1252", "shift_jis")
    sha256: str = ""  # of the file's bytes: the index knows when a file changed

    @property
    def text(self) -> str:
        """All the text, paragraphs separated by blank lines (for tests and previews)."""
        return "\n\n".join(section.text for section in self.sections)

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "sections": [s.to_dict() for s in self.sections],
                "pages": self.pages, "encoding": self.encoding, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: dict) -> ParsedDocument:
        return cls(path=data["path"], kind=data["kind"], sections=[Section.from_dict(s) for s in data["sections"]],
                   pages=data.get("pages"), encoding=data.get("encoding"), sha256=data.get("sha256", ""))


_NON_BLANK = re.compile(r"\S")


def split_long(text: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """Cut `text` into pieces of at most `limit` characters: at a line break if one is near, else a space.

    A text that fits is kept as it is (a <pre> block keeps its indentation).
    """
    if len(text) <= limit:
        return [text] if text.strip() else []
    pieces = []
    start = 0  # walk the text by index: copying what is left at each cut made a 30 MB line take 40 s
    while len(text) - start > limit:
        cut = text.rfind("\n", start + limit // 2, start + limit)
        if cut < 0:
            cut = text.rfind(" ", start + limit // 2, start + limit)
        if cut < 0:
            cut = start + limit
        pieces.append(text[start:cut].strip())
        following = _NON_BLANK.search(text, cut)  # what lstrip would leave
        start = following.start() if following else len(text)
    if text[start:].strip():
        pieces.append(text[start:].strip())
    return [piece for piece in pieces if piece]


class HeadingPath:
    """The headings above the current paragraph; a heading of level n replaces those of level >= n."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> tuple[str, ...]:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))
        return self.path

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._stack)
