"""PDF: the text layer page by page with PDFium (pypdfium2), each paragraph knowing its page.

PDFium is native code reading untrusted bytes: Ember calls this only in the parser child
(parse_child.py), where a crash or a hang costs one file. PDFium gives the characters of a page in
content order, which is reading order for nearly every PDF made from a text document.
"""

from __future__ import annotations

import re
from pathlib import Path

import pypdfium2 as pdfium  # native: only the parser child imports this module

from engine.rag.document import ParsedDocument, Section, split_long
from engine.rag.errors import DamagedDocument, EmptyDocument, EncryptedDocument
from engine.rag.files import MAX_PDF_BYTES, check_size, check_text_total, display_name, sha256_of

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def page_paragraphs(text: str) -> list[str]:
    """A page's text cut at blank lines (PDFium ends each line with \\r\\n)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufffe", "").replace("\x00", "")
    return [part.strip() for part in _PARAGRAPH_BREAK.split(text) if part.strip()]


def _pdfium_says(error: Exception) -> str:
    """PDFium's words in pypdfium2's error ("Failed to load document (PDFium: Data format error).")."""
    found = re.search(r"PDFium: ([^)]+)", str(error))
    return f"PDFium: {found.group(1).lower()}" if found else str(error)


def load_pdf(path: Path) -> ParsedDocument:
    check_size(path, MAX_PDF_BYTES)
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower() or "security" in str(exc).lower():
            raise EncryptedDocument(f"{display_name(path)} is password-protected.", path=str(path)) from exc
        raise DamagedDocument(f"{display_name(path)} is damaged or not a PDF ({_pdfium_says(exc)}).",
                              path=str(path)) from exc
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
                text = textpage.get_text_range()
            finally:
                textpage.close()
                page.close()
            for paragraph in page_paragraphs(text):
                chars += len(paragraph)
                sections.extend(Section(piece, page=number) for piece in split_long(paragraph))
            check_text_total(path, chars)
    except pdfium.PdfiumError as exc:
        raise DamagedDocument(f"{display_name(path)} is damaged: a page cannot be read ({_pdfium_says(exc)}).",
                              path=str(path)) from exc
    finally:
        pdf.close()
    if not sections:
        raise EmptyDocument(f"{display_name(path)} has no text layer (a scan or images only).", path=str(path))
    return ParsedDocument(path=str(path), kind="pdf", sections=sections, pages=pages, sha256=sha256_of(path))
