"""Reading a document file with limits: its size checked before any parsing, its name in messages."""

from __future__ import annotations

from pathlib import Path

from engine.rag.errors import DocumentError, DocumentTooBig, EmptyDocument

MiB = 1024 * 1024
# Text, Markdown, HTML and code: 32 MiB is about 8 million tokens, days of reading and hours of
# embedding on a CPU. A text file that big is a log or a data dump, not a document; it is refused
# with a clear reason rather than streamed (streaming would complicate every later stage for it).
MAX_TEXT_FILE_BYTES = 32 * MiB
MAX_PDF_BYTES = 512 * MiB  # scans make PDFs big; the text inside is what the other limits bound
MAX_ZIP_FILE_BYTES = 256 * MiB  # DOCX and EPUB files
MAX_TEXT_CHARS = 32_000_000  # the text taken out of one PDF, DOCX or EPUB
# Paragraphs (sections) of one document: a 2000-page book has some 50,000. A file of millions of
# one-letter paragraphs ("a\n\n" over and over) would otherwise travel to the app as millions of
# objects (8 MB of it took 1.6 GB of the app's memory) and then to the embedding model.
MAX_SECTIONS = 200_000


def display_name(path: str | Path) -> str:
    """How messages name a file: its name in quotes ("report.pdf")."""
    return f"“{Path(path).name}”"


def check_size(path: Path, limit: int) -> int:
    """The file's size; refuses a missing, unreadable, empty or too big file before anything reads it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DocumentError(f"{display_name(path)} cannot be read: {exc.strerror or exc}.",
                            "Check that the file still exists and that you may read it.", path=str(path)) from exc
    if not path.is_file():
        raise DocumentError(f"{display_name(path)} is not a file.", "Add files, or a folder's files.",
                            path=str(path))
    if size == 0:
        raise EmptyDocument(f"{display_name(path)} is empty.", path=str(path))
    if size > limit:
        raise DocumentTooBig(f"{display_name(path)} is {size / MiB:,.0f} MB; Ember reads files of this kind up to "
                             f"{limit / MiB:,.0f} MB.", path=str(path))
    return size


def read_bytes(path: Path, limit: int) -> bytes:
    """The whole file, after `check_size`."""
    check_size(path, limit)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{display_name(path)} cannot be read: {exc.strerror or exc}.", path=str(path)) from exc


def check_text_total(path: Path, chars: int) -> None:
    if chars > MAX_TEXT_CHARS:
        raise DocumentTooBig(f"{display_name(path)} holds more than {MAX_TEXT_CHARS // 1_000_000} million "
                             "characters of text; Ember reads documents up to that size.", path=str(path))


def check_section_count(path: Path, sections: int) -> None:
    if sections > MAX_SECTIONS:
        raise DocumentTooBig(f"{display_name(path)} has {sections:,} paragraphs; Ember reads documents of up to "
                             f"{MAX_SECTIONS:,}.", path=str(path))
