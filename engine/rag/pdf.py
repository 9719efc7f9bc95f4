"""PDF: the text layer page by page with PDFium (pypdfium2), each paragraph knowing its page.

PDFium is native code reading untrusted bytes: Ember calls this only in the parser child
(parse_child.py), where a crash or a hang costs one file. PDFium gives the characters of a page in
content order, which is reading order for nearly every PDF made from a text document.
"""

from __future__ import annotations

import re
from pathlib import Path

import pypdfium2 as pdfium  # native: only the parser child imports this module

from engine.library.hashing import sha256_of
from engine.rag.document import ParsedDocument, Section, split_long
from engine.rag.errors import DamagedDocument, EmptyDocument, EncryptedDocument
from engine.rag.files import MAX_PDF_BYTES, check_size, check_text_total, display_name

PARAGRAPH_GAP = 1.35  # a line this many typical line pitches below the one above starts a paragraph


def paragraph_starts(bottoms: list[float | None]) -> list[bool]:
    """Which lines start a paragraph, from each line's baseline height on the page (None: a blank line).

    PDFs mark no paragraphs; their lines do: a gap wider than the usual line pitch, a blank line, or
    a line higher than the one before (the next column) starts a new paragraph. Two pieces of one
    line (PDFium breaks a line where its text objects change) stay together.
    """
    pitches = sorted(above - below for above, below in zip(bottoms, bottoms[1:], strict=False)
                     if above is not None and below is not None and above > below)
    usual = pitches[len(pitches) // 2] if pitches else 0.0
    starts = []
    for index, bottom in enumerate(bottoms):
        above = bottoms[index - 1] if index else None
        if index == 0 or bottom is None or above is None:
            starts.append(True)
        else:  # a gap below, or a jump up of more than a line (a line split on one baseline is not a jump)
            starts.append(above - bottom > PARAGRAPH_GAP * usual or bottom - above > max(usual, 1.0))
    return starts


def page_paragraphs(textpage) -> list[str]:
    """A page's text cut into paragraphs, using where PDFium puts each line's first character."""
    raw = textpage.get_text_range()
    lines = raw.split("\r\n")  # PDFium ends each line with \r\n
    aligned = len(raw) == textpage.count_chars()  # string index = PDFium character index (no astral chars)
    bottoms: list[float | None] = []
    position = 0
    for number, line in enumerate(lines):
        if not line.strip():
            bottoms.append(None)
        elif aligned:
            first = position + len(line) - len(line.lstrip())
            bottoms.append(textpage.get_charbox(first, loose=True)[1])
        else:
            bottoms.append(-float(number))  # no geometry: evenly spaced lines, so only blank lines cut
        position += len(line) + 2
    paragraphs: list[list[str]] = []
    for line, starts in zip(lines, paragraph_starts(bottoms), strict=True):
        if starts or not paragraphs:
            paragraphs.append([])
        if line.strip():
            paragraphs[-1].append(_clean(line))
    return ["\n".join(lines) for lines in paragraphs if lines]


def _clean(line: str) -> str:
    return line.replace("\ufffe", "").replace("\x00", "").replace("\r", "").rstrip()


def pdfium_says(error: Exception) -> str:
    """PDFium's words in pypdfium2's error ("Failed to load document (PDFium: Data format error).")."""
    found = re.search(r"PDFium: ([^)]+)", str(error))
    return f"PDFium: {found.group(1).lower()}" if found else str(error)


def open_pdf(path: Path) -> pdfium.PdfDocument:
    """The PDF opened by PDFium after the size check; EncryptedDocument or DamagedDocument when it cannot be."""
    check_size(path, MAX_PDF_BYTES)
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower() or "security" in str(exc).lower():
            raise EncryptedDocument(f"{display_name(path)} is password-protected.", path=str(path)) from exc
        raise DamagedDocument(f"{display_name(path)} is damaged or not a PDF ({pdfium_says(exc)}).",
                              path=str(path)) from exc


def load_pdf(path: Path) -> ParsedDocument:
    pdf = open_pdf(path)
    sections: list[Section] = []
    chars = 0
    try:
        pages = len(pdf)
        if pages == 0:
            raise DamagedDocument(f"{display_name(path)} is damaged: it has no pages.", path=str(path))
        for number in range(1, pages + 1):
            page = pdf[number - 1]
            textpage = page.get_textpage()
            try:
                paragraphs = page_paragraphs(textpage)
            finally:
                textpage.close()
                page.close()
            for paragraph in paragraphs:
                chars += len(paragraph)
                sections.extend(Section(piece, page=number) for piece in split_long(paragraph))
            check_text_total(path, chars)
    except pdfium.PdfiumError as exc:
        raise DamagedDocument(f"{display_name(path)} is damaged: a page cannot be read ({pdfium_says(exc)}).",
                              path=str(path)) from exc
    finally:
        pdf.close()
    if not sections:
        raise EmptyDocument(f"{display_name(path)} has no text layer (a scan or images only).", path=str(path))
    return ParsedDocument(path=str(path), kind="pdf", sections=sections, pages=pages, sha256=sha256_of(path))
