"""Plain text and source code: the encoding detected, binary files refused, paragraphs with their lines.

Decoding goes from the cheap and certain to the guessed: a byte-order mark, then strict UTF-8
(nearly every file today), UTF-16 without its mark (NUL bytes in every other place, as some Windows
tools write it), UTF-8 with a few broken bytes (they become U+FFFD instead of turning every accent
into a wrong letter), then charset-normalizer's guess (cp1252, Shift-JIS, GB18030 ...). A NUL byte
outside UTF-16/32 means binary data: such a file is refused, not indexed as noise.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from pathlib import Path

import charset_normalizer

from engine.rag.document import MAX_SECTION_CHARS, ParsedDocument, Section, split_long
from engine.rag.errors import NotText
from engine.rag.files import MAX_TEXT_FILE_BYTES, display_name, read_bytes

_BOMS = [  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
]
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")  # not tab, newline, vertical tab, form feed, carriage return
TIE = 0.01  # charset-normalizer's language coherence this close is a tie
LATIN_CODE_PAGES = {"cp1250", "cp1252", "cp1257", "cp775", "cp850", "latin_1", "iso8859_2", "iso8859_3", "iso8859_4",
                    "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15", "mac_latin2", "mac_roman"}
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.I)


def decode_text(data: bytes, path: Path, *, html: bool = False) -> tuple[str, str]:
    """(text, encoding) of a file's bytes; NotText when they are not text in any encoding."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode(data, encoding, path), encoding.removesuffix("-sig")
    if (utf16 := _bomless_utf16(data)) is not None:
        return _decode(data, utf16, path), utf16
    if b"\x00" in data:
        raise NotText(f"{display_name(path)} is not a text file (it holds binary data).", path=str(path))
    try:
        return _checked(data.decode("utf-8"), path), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = _declared_charset(data) if html else None
    if declared:
        try:
            return _checked(data.decode(declared), path), declared
        except UnicodeDecodeError:
            pass
    if (mostly := _mostly_utf8(data)) is not None:
        return _checked(mostly, path), "utf-8"
    guess = _guess(data)
    if guess is None:
        raise NotText(f"{display_name(path)} is not a text file (no text encoding fits its bytes).", path=str(path))
    return _checked(str(guess), path), guess.encoding


def _bomless_utf16(data: bytes) -> str | None:
    """"utf-16-le" or "utf-16-be" for UTF-16 without a byte-order mark, judged on the first 4 KiB: an
    even length, and NUL in nearly all odd (LE) or even (BE) places but in few of the others. Latin,
    Greek, Cyrillic ... text in UTF-16 looks so; binary data with NULs does not."""
    sample = data[:4096]
    if len(data) % 2 or len(sample) < 4:
        return None
    pairs = len(sample) // 2
    even_nul = sample[0::2].count(0) / pairs
    odd_nul = sample[1::2].count(0) / pairs
    if odd_nul > 0.7 and even_nul < 0.1:
        return "utf-16-le"
    if even_nul > 0.7 and odd_nul < 0.1:
        return "utf-16-be"
    return None


def _mostly_utf8(data: bytes) -> str | None:
    """The text as UTF-8 with its broken bytes as U+FFFD, when most of its non-ASCII characters are
    valid UTF-8 (a file damaged in a few places, or two files joined); None otherwise (a legacy code
    page, where nearly every non-ASCII byte is invalid UTF-8)."""
    text = data.decode("utf-8", errors="replace")
    broken = text.count("\ufffd")
    valid = sum(1 for ch in text if ord(ch) > 127) - broken
    return text if broken and valid >= 2 * broken else None


def _guess(data: bytes):
    """charset-normalizer's best match, but cp1252 over another Latin code page it scores as coherent.

    Its chaos measure ties or favours cp1250/cp1257 on French text in cp1252, which they garble
    ("crème" -> "crčme"); cp1252 is by far the most common of these legacy encodings.
    """
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None or best.encoding not in LATIN_CODE_PAGES:
        return best
    for match in matches:
        if match.encoding == "cp1252" and match.coherence >= best.coherence - TIE:
            return match
    return best


def _decode(data: bytes, encoding: str, path: Path) -> str:
    try:
        return _checked(data.decode(encoding), path)
    except UnicodeDecodeError as exc:
        raise NotText(f"{display_name(path)} starts like {encoding} text but is not valid {encoding}.",
                      path=str(path)) from exc


def _checked(text: str, path: Path) -> str:
    """Refuse text that is mostly control characters: binary data that happened to decode."""
    sample = text[:100_000]
    if sample and len(_CONTROL.findall(sample)) > len(sample) // 50:
        raise NotText(f"{display_name(path)} is not a text file (it holds binary data).", path=str(path))
    return text


def _declared_charset(data: bytes) -> str | None:
    """The charset an HTML file declares in a <meta> tag, if Python knows it."""
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None


def split_lines(text: str) -> list[str]:
    """Lines as an editor numbers them (only \\n, \\r\\n and \\r end a line, unlike str.splitlines)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def line_sections(lines: list[str], first: int, heading_path: tuple[str, ...] = ()) -> list[Section]:
    """One paragraph (lines numbered from `first`) as sections of at most MAX_SECTION_CHARS, cut at lines."""
    sections: list[Section] = []
    start, size, block = first, 0, []
    for number, line in enumerate(lines, first):
        if block and size + len(line) > MAX_SECTION_CHARS:
            sections.append(Section("\n".join(block), lines=(start, number - 1), heading_path=heading_path))
            start, size, block = number, 0, []
        if len(line) > MAX_SECTION_CHARS:  # one endless line (minified code): cut it, all pieces on that line
            sections.extend(Section(piece, lines=(number, number), heading_path=heading_path)
                            for piece in split_long(line))
            start = number + 1
            continue
        block.append(line)
        size += len(line) + 1
    if block and "".join(block).strip():
        sections.append(Section("\n".join(block), lines=(start, first + len(lines) - 1), heading_path=heading_path))
    return sections


def paragraph_sections(lines: list[str]) -> list[Section]:
    """Paragraphs (runs of non-blank lines) as sections with their 1-based line ranges."""
    sections: list[Section] = []
    block: list[str] = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            block.append(line.rstrip())
            continue
        if block:
            sections.extend(line_sections(block, number - len(block)))
            block = []
    if block:
        sections.extend(line_sections(block, len(lines) - len(block) + 1))
    return sections


def load_text(path: Path, kind: str = "text") -> ParsedDocument:
    """A plain text or source code file (`kind` "text" or "code")."""
    data = read_bytes(path, MAX_TEXT_FILE_BYTES)
    text, encoding = decode_text(data, path)
    return ParsedDocument(path=str(path), kind=kind, sections=paragraph_sections(split_lines(text)),
                          encoding=encoding, sha256=hashlib.sha256(data).hexdigest())  # the bytes already read
