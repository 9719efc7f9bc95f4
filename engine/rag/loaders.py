"""`load_document(path)`: the one entry to every reader, chosen by the file's kind (formats.py).

Each reader is a pure function path -> ParsedDocument that raises a DocumentError naming the file.
They run in the parser child (parse_child.py), never in the app: PDFium is native code, and any
reader can meet a file made to hang it or fill the memory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.rag.document import ParsedDocument
from engine.rag.docx import load_docx
from engine.rag.epub import load_epub
from engine.rag.errors import EmptyDocument
from engine.rag.files import check_section_count, display_name
from engine.rag.formats import document_kind, unsupported
from engine.rag.html import load_html
from engine.rag.markdown import load_markdown
from engine.rag.pdf import load_pdf
from engine.rag.text import load_text

_READERS: dict[str, Callable[[Path], ParsedDocument]] = {
    "pdf": load_pdf,
    "docx": load_docx,
    "epub": load_epub,
    "markdown": load_markdown,
    "html": load_html,
    "text": load_text,
    "code": lambda path: load_text(path, kind="code"),
}


def load_document(path: str | Path) -> ParsedDocument:
    """Read one file in this process (call it in the parser child; the app uses DocumentParser)."""
    path = Path(path)
    kind = document_kind(path)
    if kind is None:
        raise unsupported(path)
    document = _READERS[kind](path)
    check_section_count(path, len(document.sections))  # before millions of them travel to the app
    if not any(section.text.strip() for section in document.sections):
        raise EmptyDocument(f"{display_name(path)} holds no text.", path=str(path))
    return document
