"""DOCX: the paragraphs of word/document.xml, headings from their styles ("Heading 1".."Heading 9").

A DOCX is a zip of XML parts. The archive is checked for zip bombs first (safe_zip) and the XML is
read with every entity refused (safe_xml). Style ids are localised ("Kop1" in Dutch Word), so the
heading level comes from the style's name or outline level in word/styles.xml; a style id that
reads "Heading2" is the fallback when styles.xml does not say.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from engine.library.hashing import sha256_of
from engine.rag.document import HeadingPath, ParsedDocument, Section, split_long
from engine.rag.safe_xml import parse_xml
from engine.rag.safe_zip import open_archive, read_member

DOCUMENT_PART = "word/document.xml"
STYLES_PART = "word/styles.xml"
_HEADING_NAME = re.compile(r"^heading\s*([1-9])$", re.I)
BODY_OUTLINE_LEVEL = 9  # w:outlineLvl 9 means body text; 0..8 are heading levels 1..9


def heading_levels(archive: zipfile.ZipFile, path: Path) -> dict[str, int]:
    """Heading level by paragraph style id, from styles.xml (styles based on a heading style inherit it)."""
    if STYLES_PART not in archive.namelist():
        return {}
    styles: dict[str, dict] = {}
    current: dict | None = None

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal current
        if name == "style" and attrs.get("type", "paragraph") == "paragraph":
            current = styles.setdefault(attrs.get("styleId", ""), {})
        elif current is not None and name in ("name", "basedOn", "outlineLvl") and "val" in attrs:
            current[name] = attrs["val"]

    def end(name: str) -> None:
        nonlocal current
        if name == "style":
            current = None

    parse_xml(read_member(archive, STYLES_PART, path), path, STYLES_PART, start=start, end=end, text=lambda _: None)

    def level(style_id: str, seen: frozenset = frozenset()) -> int:
        style = styles.get(style_id, {})
        if match := _HEADING_NAME.match(style.get("name", "")):
            return int(match.group(1))
        if style.get("outlineLvl", "").isdigit() and int(style["outlineLvl"]) < BODY_OUTLINE_LEVEL:
            return int(style["outlineLvl"]) + 1
        parent = style.get("basedOn")
        return level(parent, seen | {style_id}) if parent and parent not in seen else 0

    return {style_id: found for style_id in styles if (found := level(style_id))}


class _Paragraphs:
    """Collects paragraphs while parse_xml walks document.xml."""

    def __init__(self, levels: dict[str, int]) -> None:
        self.levels = levels
        self.sections: list[Section] = []
        self.headings = HeadingPath()
        self._parts: list[str] = []
        self._style = ""
        self._outline: int | None = None
        self._in_text = False
        self._in_properties = 0  # inside w:pPr: its w:tab elements are tab stops, not tabs
        self._in_fallback = 0  # inside mc:Fallback: a second copy of a text box for old readers

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "Fallback":
            self._in_fallback += 1
        elif self._in_fallback:
            return
        elif name == "p":
            self._style, self._outline = "", None
        elif name == "pPr":
            self._in_properties += 1
        elif name == "pStyle" and self._in_properties:
            self._style = attrs.get("val", "")
        elif name == "outlineLvl" and self._in_properties and attrs.get("val", "").isdigit():
            self._outline = int(attrs["val"])
        elif name == "t":
            self._in_text = True
        elif name == "tab" and not self._in_properties:
            self._parts.append("\t")
        elif name in ("br", "cr"):
            self._parts.append("\n")

    def end(self, name: str) -> None:
        if name == "Fallback":
            self._in_fallback = max(0, self._in_fallback - 1)
        elif self._in_fallback:
            return
        elif name == "t":
            self._in_text = False
        elif name == "pPr":
            self._in_properties = max(0, self._in_properties - 1)
        elif name == "p":
            self._end_paragraph()

    def text(self, data: str) -> None:
        if self._in_text and not self._in_fallback:
            self._parts.append(data)

    def _level(self) -> int:
        if self._outline is not None and self._outline < BODY_OUTLINE_LEVEL:
            return self._outline + 1
        if self._style in self.levels:
            return self.levels[self._style]
        match = _HEADING_NAME.match(self._style)
        return int(match.group(1)) if match else 0

    def _end_paragraph(self) -> None:
        text = "".join(self._parts).strip()
        self._parts = []
        if not text:
            return
        if level := self._level():
            title = " ".join(text.split())
            self.sections.append(Section(title, heading_path=self.headings.enter(level, title)))
        else:
            self.sections.extend(Section(piece, heading_path=self.headings.path) for piece in split_long(text))


def load_docx(path: Path) -> ParsedDocument:
    with open_archive(path, "DOCX") as archive:
        paragraphs = _Paragraphs(heading_levels(archive, path))
        parse_xml(read_member(archive, DOCUMENT_PART, path), path, DOCUMENT_PART,
                  start=paragraphs.start, end=paragraphs.end, text=paragraphs.text)
    return ParsedDocument(path=str(path), kind="docx", sections=paragraphs.sections, sha256=sha256_of(path))
