"""Why one document could not be read: typed errors that name the file and say what to do.

Each error has a `kind`, a short word that travels from the parser child to the parent in a
"failed" event and turns back into the same class there (`error_from_event`). Every message
names the file, so a list of failures reads well on its own.
"""

from __future__ import annotations

from engine.errors import EmberError


class DocumentError(EmberError):
    """One document could not be read; the others are not affected."""

    kind = "failed"
    default_hint = "Open the file in another program and save a copy, then add that copy."

    def __init__(self, message: str, hint: str | None = None, *, path: str = "", **kwargs) -> None:
        super().__init__(message, hint, **kwargs)
        self.path = path

    def to_event(self) -> dict:
        return {"type": "failed", "path": self.path, "kind": self.kind, "reason": self.message, "hint": self.hint}


class UnsupportedFormat(DocumentError):
    kind = "unsupported"
    default_hint = "Ember reads PDF, DOCX, EPUB, Markdown, HTML, plain text and source code files."


class EncryptedDocument(DocumentError):
    kind = "encrypted"
    default_hint = "Remove the password (save an unprotected copy in the program that made it), then add that copy."


class DamagedDocument(DocumentError):
    kind = "damaged"


class NotText(DocumentError):
    kind = "binary"
    default_hint = "The file holds binary data. If it is a document, save it as text, PDF or DOCX first."


class EmptyDocument(DocumentError):
    kind = "empty"
    default_hint = "There is nothing to index. A scanned PDF has no text layer: run OCR on it first."


class DocumentTooBig(DocumentError):
    kind = "too_big"
    default_hint = "Split the file into smaller files and add those."


class ZipBomb(DocumentError):
    kind = "zip_bomb"
    default_hint = "The archive unpacks to far more data than a document holds; it was not opened. Use another copy."


class UnsafeXml(DocumentError):
    kind = "unsafe_xml"
    default_hint = ("The file's XML declares entities (a way to read other files or to blow up in memory); "
                    "Ember does not read such files. Save a fresh copy from a word processor.")


class NoSuchPage(DocumentError):
    """A PDF page asked for by number that the file does not have (it changed since it was indexed)."""

    kind = "no_page"
    default_hint = "The file may have changed since it was indexed: index its collection again."


class ReaderStopped(DocumentError):
    """The parser child crashed, ran past its time limit or ran out of memory on this file."""

    kind = "reader_stopped"
    default_hint = ("The file may be damaged or made to attack document readers; the other files are not "
                    "affected. Open it in another program, save a copy, and add that copy.")


ERRORS_BY_KIND: dict[str, type[DocumentError]] = {
    cls.kind: cls
    for cls in (DocumentError, UnsupportedFormat, EncryptedDocument, DamagedDocument, NotText, EmptyDocument,
                DocumentTooBig, ZipBomb, UnsafeXml, NoSuchPage, ReaderStopped)
}


def error_from_event(event: dict) -> DocumentError:
    """The typed error a child's "failed" event describes (an unknown kind becomes a DocumentError)."""
    cls = ERRORS_BY_KIND.get(event.get("kind", ""), DocumentError)
    return cls(event.get("reason") or "The document could not be read.", event.get("hint"),
               path=event.get("path", ""))
