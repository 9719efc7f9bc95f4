"""EPUB: a zip of XHTML chapters; their text in reading order (the spine), headings carried across chapters.

META-INF/container.xml names the package file (.opf); its manifest maps ids to files and its spine
lists the chapters in order. The small XML files go through safe_xml (no entities); the chapters
through the HTML reader, which loads nothing either.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import unquote

from engine.library.hashing import sha256_of
from engine.rag.document import HeadingPath, ParsedDocument, Section
from engine.rag.errors import DamagedDocument
from engine.rag.files import check_text_total, display_name
from engine.rag.html import html_sections
from engine.rag.safe_xml import parse_xml
from engine.rag.safe_zip import open_archive, read_member
from engine.rag.text import decode_text

CONTAINER_PART = "META-INF/container.xml"
CHAPTER_TYPES = {"application/xhtml+xml", "text/html"}


def _package_path(archive, path: Path) -> str:
    found: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == "rootfile" and "full-path" in attrs:
            found.append(attrs["full-path"])

    parse_xml(read_member(archive, CONTAINER_PART, path), path, CONTAINER_PART, start=start,
              end=lambda _: None, text=lambda _: None)
    if not found:
        raise DamagedDocument(f"{display_name(path)} is damaged: it names no package file.", path=str(path))
    return found[0]


def _chapters(archive, path: Path, package: str) -> list[str]:
    """The chapters' paths inside the archive, in reading order."""
    manifest: dict[str, tuple[str, str]] = {}
    spine: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == "item" and "id" in attrs and "href" in attrs:
            manifest[attrs["id"]] = (attrs["href"], attrs.get("media-type", ""))
        elif name == "itemref" and "idref" in attrs:
            spine.append(attrs["idref"])

    parse_xml(read_member(archive, package, path), path, package, start=start, end=lambda _: None,
              text=lambda _: None)
    folder = posixpath.dirname(package)
    chapters: dict[str, None] = {}  # each chapter once: a spine that lists one 100,000 times is not read so often
    for idref in spine:
        href, media_type = manifest.get(idref, ("", ""))
        if href and media_type in CHAPTER_TYPES:
            chapters.setdefault(posixpath.normpath(posixpath.join(folder, unquote(href.split("#")[0]))))
    return list(chapters)


def load_epub(path: Path) -> ParsedDocument:
    sections: list[Section] = []
    headings = HeadingPath()
    chars = 0
    with open_archive(path, "EPUB") as archive:
        for chapter in _chapters(archive, path, _package_path(archive, path)):
            text, _ = decode_text(read_member(archive, chapter, path), path, html=True)
            found = html_sections(text, headings)
            chars += sum(len(section.text) for section in found)
            check_text_total(path, chars)
            sections.extend(found)
    return ParsedDocument(path=str(path), kind="epub", sections=sections, sha256=sha256_of(path))
