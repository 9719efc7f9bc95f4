"""HTML: the visible text (no script, style or template), paragraph by paragraph, under its headings.

The standard library's HTMLParser only tokenises: it never fetches a stylesheet, an image or a
script, and resolves no external entity, so a hostile page can make it do nothing but read.
EPUB chapters (XHTML) go through the same reader.
"""

from __future__ import annotations

import hashlib
from html.parser import HTMLParser
from pathlib import Path

from engine.rag.document import HeadingPath, ParsedDocument, Section, split_long
from engine.rag.files import MAX_TEXT_FILE_BYTES, read_bytes
from engine.rag.text import decode_text

HIDDEN = {"script", "style", "noscript", "template", "title", "svg", "iframe"}  # never shown as text
HEADINGS = {f"h{level}": level for level in range(1, 7)}
BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "html", "li", "main", "nav", "ol",
    "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul",
}


class _TextReader(HTMLParser):
    """Collects sections while the parser walks the tags."""

    def __init__(self, headings: HeadingPath | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.headings = headings or HeadingPath()
        self._hidden = 0  # depth inside elements whose text is not shown
        self._pre = 0  # depth inside <pre>: whitespace is kept
        self._heading = 0  # the level of the heading being read, 0 outside one
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in HIDDEN:
            self._hidden += 1
        elif tag in HEADINGS:
            self._flush()
            self._heading = HEADINGS[tag]
        elif tag in BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre += 1

    def handle_startendtag(self, tag: str, attrs) -> None:  # <br/>: no end tag follows
        if tag in BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in HEADINGS and self._heading:
            title = " ".join("".join(self._parts).split())
            level, self._heading, self._parts = self._heading, 0, []
            if title:
                path = self.headings.enter(level, title)
                self.sections.append(Section(title, heading_path=path))
        elif tag in BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._parts.append(data)

    def _flush(self) -> None:
        if self._heading:  # a block inside a heading (<h2><span>...): keep reading the heading
            return
        raw = "".join(self._parts)
        self._parts = []
        text = raw.strip("\n") if self._pre else " ".join(raw.split())
        if text.strip():
            self.sections.extend(Section(piece, heading_path=self.headings.path) for piece in split_long(text))

    def finish(self) -> list[Section]:
        self.close()
        self._heading = 0
        self._flush()
        return self.sections


def defused(html: str) -> str:
    """The page with each "<" after its last ">" written as "&lt;" (the same text once read).

    Such a "<" opens a tag that never closes, and the standard library's HTMLParser (this Python's)
    tries each one again to the end of the page: quadratic, so 300 KB of "<a \"" would keep the
    reader busy for hours. With a ">" after it, a broken tag is read in one pass."""
    last = html.rfind(">")
    tail = html[last + 1:]
    return html[:last + 1] + tail.replace("<", "&lt;") if "<" in tail else html


def html_sections(html: str, headings: HeadingPath | None = None) -> list[Section]:
    """The visible text of an HTML page as sections; `headings` carries the path across EPUB chapters."""
    reader = _TextReader(headings)
    reader.feed(defused(html))
    return reader.finish()


def load_html(path: Path) -> ParsedDocument:
    data = read_bytes(path, MAX_TEXT_FILE_BYTES)
    text, encoding = decode_text(data, path, html=True)
    return ParsedDocument(path=str(path), kind="html", sections=html_sections(text), encoding=encoding,
                          sha256=hashlib.sha256(data).hexdigest())  # the bytes already read
