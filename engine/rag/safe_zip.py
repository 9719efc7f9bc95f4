"""Opening DOCX and EPUB archives without letting a zip bomb fill the memory or the disk.

Before anything is unpacked, the archive's own table of contents is checked: how many entries,
how big they say they are, how much they say they shrank. Then each entry is read with a hard cap,
so an entry that lies about its size is stopped at the cap all the same.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from engine.rag.errors import DamagedDocument, EncryptedDocument, ZipBomb
from engine.rag.files import MAX_ZIP_FILE_BYTES, MiB, check_size, display_name

MAX_ENTRIES = 20_000
MAX_UNPACKED_BYTES = 512 * MiB  # all entries together, as the archive declares them
MAX_RATIO = 200  # uncompressed / compressed for an entry over RATIO_FROM_BYTES; Word's XML shrinks ~10x
RATIO_FROM_BYTES = 1 * MiB
MAX_MEMBER_BYTES = 128 * MiB  # the most Ember unpacks of one entry (document.xml, one EPUB chapter)
READ_PIECE = 1 * MiB
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an encrypted Office file (or an old .doc) is OLE, not zip


def open_archive(path: Path, what: str) -> zipfile.ZipFile:
    """The archive, once its declared sizes look like a document's; `what` names the format ("DOCX")."""
    check_size(path, MAX_ZIP_FILE_BYTES)
    with open(path, "rb") as file:
        magic = file.read(len(OLE_MAGIC))
    if magic == OLE_MAGIC:
        raise EncryptedDocument(f"{display_name(path)} is password-protected (or an old binary Word file), "
                                f"not a plain {what} archive.", path=str(path))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DamagedDocument(f"{display_name(path)} is not a valid {what} file (its zip structure is broken).",
                              path=str(path)) from exc
    try:
        _check_declared_sizes(archive, path)
    except Exception:
        archive.close()
        raise
    return archive


def _check_declared_sizes(archive: zipfile.ZipFile, path: Path) -> None:
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        raise ZipBomb(f"{display_name(path)} holds {len(entries):,} files; a document holds far fewer.",
                      path=str(path))
    total = sum(entry.file_size for entry in entries)
    if total > MAX_UNPACKED_BYTES:
        raise ZipBomb(f"{display_name(path)} would unpack to {total / MiB:,.0f} MB (a zip bomb?); Ember unpacks "
                      f"documents up to {MAX_UNPACKED_BYTES // MiB} MB.", path=str(path))
    for entry in entries:
        ratio = entry.file_size / max(1, entry.compress_size)
        if entry.file_size > RATIO_FROM_BYTES and ratio > MAX_RATIO:
            raise ZipBomb(f"{display_name(path)} holds {entry.filename!r}, which would unpack {ratio:,.0f} times "
                          "bigger than it is stored (a zip bomb?).", path=str(path))


def read_member(archive: zipfile.ZipFile, name: str, path: Path, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """One entry's bytes, never more than `limit` whatever the archive claims.

    Read a MiB at a time: zipfile inflates as much as it is asked for before it cuts to the size
    the archive declares, so one big read would unpack `limit` bytes of a part that lies about its size."""
    try:
        with archive.open(name) as member:
            data = bytearray()
            while len(data) <= limit:
                piece = member.read(min(READ_PIECE, limit + 1 - len(data)))
                if not piece:
                    break
                data += piece
    except KeyError as exc:
        raise DamagedDocument(f"{display_name(path)} lacks its part {name!r}.", path=str(path)) from exc
    except RuntimeError as exc:  # zipfile's "encrypted, password required"
        raise EncryptedDocument(f"{display_name(path)} is password-protected.", path=str(path)) from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise DamagedDocument(f"{display_name(path)} is damaged: its part {name!r} cannot be unpacked ({exc}).",
                              path=str(path)) from exc
    if len(data) > limit:
        raise ZipBomb(f"{display_name(path)}: its part {name!r} unpacks to more than {limit // MiB} MB.",
                      path=str(path))
    return bytes(data)
