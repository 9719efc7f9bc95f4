"""Hostile documents written by code for tests/hostile: PDFs built object by object (so a test can
bend their structure: a cycle, a bomb), DOCX archives with lying or exploding parts, and text files
that are huge, sparse, or in awkward encodings. Nothing here is a stored blob."""

from __future__ import annotations

import os
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


# --- DOCX ----------------------------------------------------------------------------------------------
def write_lying_docx(path: Path, unpacked_bytes: int, claimed_bytes: int = 4096) -> Path:
    """A DOCX whose document.xml unpacks to `unpacked_bytes` but whose table of contents claims
    `claimed_bytes`: the size checks pass, so only a hard cap on what is unpacked stops it."""
    body = b'<?xml version="1.0"?><w:document xmlns:w="urn:w"><w:body><w:p><w:r><w:t>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(body)
            block = b"A" * MiB
            for _ in range(unpacked_bytes // MiB):
                member.write(block)
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")  # the central directory's entry: what zipfile believes
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        name = bytes(data[at + 46: at + 46 + name_length])
        if name == b"word/document.xml":
            extra_length = struct.unpack_from("<H", data, at + 30)[0]
            if struct.unpack_from("<I", data, at + 24)[0] == 0xFFFFFFFF:  # zip64: the sizes are in the extra field
                extra = at + 46 + name_length
                end = extra + extra_length
                while extra < end:
                    tag, size = struct.unpack_from("<HH", data, extra)
                    if tag == 1:
                        struct.pack_into("<Q", data, extra + 4, claimed_bytes)
                    extra += 4 + size
            else:
                struct.pack_into("<I", data, at + 24, claimed_bytes)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


def write_many_entries_docx(path: Path, entries: int) -> Path:
    """A DOCX of thousands of tiny parts: each is small, their number is the attack."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("word/document.xml", '<w:document xmlns:w="urn:w"><w:body/></w:document>')
        for n in range(entries):
            archive.writestr(f"word/media/{n}.xml", "x")
    return path


XXE_PROLOGS = {
    "external entity": '<!DOCTYPE w:document [<!ENTITY leak SYSTEM "file://{secret}">]>',
    "parameter entity": '<!DOCTYPE w:document [<!ENTITY % leak SYSTEM "file://{secret}"> %leak;]>',
    "billion laughs": ('<!DOCTYPE w:document [<!ENTITY a "ha"><!ENTITY b "' + "&a;" * 10 + '">'
                       '<!ENTITY c "' + "&b;" * 10 + '"><!ENTITY d "' + "&c;" * 10 + '"><!ENTITY e "' + "&d;" * 10
                       + '"><!ENTITY f "' + "&e;" * 10 + '"><!ENTITY g "' + "&f;" * 10 + '"><!ENTITY h "'
                       + "&g;" * 10 + '"><!ENTITY i "' + "&h;" * 10 + '">]>'),
}
XXE_USES = {"external entity": "&leak;", "parameter entity": "", "billion laughs": "&i;"}


# --- text ----------------------------------------------------------------------------------------------
def write_sparse(path: Path, size: int) -> Path:
    """A file of `size` bytes that takes no disk and no time to write (a hole, read as NULs)."""
    with open(path, "wb") as file:
        file.truncate(size)
    return path


def write_one_line(path: Path, size: int, word: bytes = b"token ") -> Path:
    """One line of `size` bytes (no newline at all), written in blocks: bounded memory here too."""
    block = word * (MiB // len(word))
    with open(path, "wb") as file:
        left = size
        while left > 0:
            piece = block[:left]
            file.write(piece)
            left -= len(piece)
    return path


# --- the reader child ------------------------------------------------------------------------------
def reader_children() -> list[int]:
    """PIDs of this process's document reader children (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"engine.rag.parse_child" in command:
            pids.append(int(entry.name))
    return pids


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def address_space_limit(pid: int) -> int | None:
    """The process's RLIMIT_AS in bytes (None: unlimited), as /proc shows it."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            soft = line.split()[3]
            return None if soft == "unlimited" else int(soft)
    return None


# --- a server that records every request -----------------------------------------------------------
@contextmanager
def recording_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server answering 200 with a 1-pixel GIF; yields (base URL, paths requested)."""
    requested: list[str] = []
    gif = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            requested.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.send_header("Content-Length", str(len(gif)))
            self.end_headers()
            self.wfile.write(gif)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="recording-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
