"""Hostile documents written by code for tests/hostile: PDFs built object by object (so a test can
bend their structure: a cycle, a bomb), DOCX archives with lying or exploding parts, and text files
that are huge, sparse, or in awkward encodings. Nothing here is a stored blob."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

MiB = 1024 * 1024
PDF_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def text_content(text: str) -> bytes:
    """A page's content stream that shows one line of text."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET\n".encode("latin-1")


def pdf_bytes(objects: list[bytes], *, root: int = 1, prev_xref_self: bool = False) -> bytes:
    """A PDF of the given objects (numbered from 1) with a correct cross-reference table.

    `prev_xref_self`: the trailer's /Prev points at this very table, a cycle a reader must not follow
    for ever."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    prev = f" /Prev {xref}" if prev_xref_self else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R{prev} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def stream(data: bytes, compressed: bool = False) -> bytes:
    flate = b" /Filter /FlateDecode" if compressed else b""
    return b"<< /Length %d%s >>\nstream\n" % (len(data), flate) + data + b"\nendstream"


def one_page_pdf(content: bytes, *, compressed: bool = False, kids: str = "[3 0 R]",
                 prev_xref_self: bool = False) -> bytes:
    """Catalog (1), Pages (2), one Page (3), its content (4), a font (5)."""
    return pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids {kids} /Count 1 >>".encode(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        stream(content, compressed),
        PDF_FONT,
    ], prev_xref_self=prev_xref_self)


def write_plain_pdf(path: Path, text: str) -> Path:
    path.write_bytes(one_page_pdf(text_content(text)))
    return path


def write_pdf_bomb(path: Path, unpacked_bytes: int, text: str = "Bomb page") -> Path:
    """One page whose content stream is `unpacked_bytes` of blanks after one line of text, deflated
    (a thousandfold smaller on disk): a decompression bomb."""
    packer = zlib.compressobj(9)
    packed = [packer.compress(text_content(text))]
    block = b" " * MiB
    for _ in range(unpacked_bytes // MiB):
        packed.append(packer.compress(block))
    packed.append(packer.flush())
    path.write_bytes(one_page_pdf(b"".join(packed), compressed=True))
    return path


def write_cyclic_pdf(path: Path, text: str = "Cycle page") -> Path:
    """A PDF whose trailer's /Prev points at its own xref and whose page tree lists itself as a kid."""
    path.write_bytes(one_page_pdf(text_content(text), kids="[3 0 R 2 0 R]", prev_xref_self=True))
    return path
