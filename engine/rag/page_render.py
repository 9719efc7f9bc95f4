"""One PDF page drawn to a PNG by PDFium (pypdfium2), with the rectangles of the cited passage on it.

PDFium is native code reading untrusted bytes: only the document child (parse_child.py) imports
this module, like pdf.py. The passage is matched word by word against the page's text layer
(passage_match.py); the matched characters' boxes are merged into one rectangle per line, in the
image's pixels, so that the app only has to paint them.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium  # native: only the document child imports this module

from engine.rag.errors import DamagedDocument, NoSuchPage
from engine.rag.files import display_name
from engine.rag.passage_match import match_passage, words
from engine.rag.pdf import open_pdf, pdfium_says
from engine.rag.rendered_page import DEFAULT_SCALE, Box, RenderedPage

MAX_SCALE = 8.0
# A poster-sized page is drawn smaller rather than failing: 40 million pixels are 120 MB of RGB, which
# with the PNG's copy stays far inside the child's memory limit.
MAX_PIXELS = 40_000_000
PNG_LEVEL = 3  # the PNG lives for a moment (the app loads it, then deletes it): speed over size

PageRect = tuple[float, float, float, float]  # left, bottom, right, top in PDF points (y grows upwards)


def render_page(path: str | Path, page: int, passage: str, out_png: str | Path,
                scale: float = DEFAULT_SCALE) -> RenderedPage:
    """Draw page `page` (1-based) of the PDF to `out_png`; the passage's lines on it as highlights.

    Raises EncryptedDocument, DamagedDocument, or NoSuchPage for a page the file does not have.
    """
    path = Path(path)
    pdf = open_pdf(path)
    try:
        count = len(pdf)
        if not 1 <= page <= count:
            raise NoSuchPage(f"{display_name(path)} has {count} page{'' if count == 1 else 's'}; "
                             f"there is no page {page}.", path=str(path))
        pdf_page = pdf[page - 1]
        try:
            width_pt, height_pt = pdf_page.get_size()
            scale = fitting_scale(width_pt, height_pt, scale)
            bitmap = pdf_page.render(scale=scale, rev_byteorder=True)  # RGB, top row first
            try:
                write_png(Path(out_png), _pixels(bitmap))
                highlights, matched, total = _passage_boxes(pdf_page, bitmap, passage)
                size = bitmap.width, bitmap.height
            finally:
                bitmap.close()
        finally:
            pdf_page.close()
    except pdfium.PdfiumError as exc:
        raise DamagedDocument(f"{display_name(path)} is damaged: page {page} cannot be drawn ({pdfium_says(exc)}).",
                              path=str(path)) from exc
    finally:
        pdf.close()
    return RenderedPage(path=str(path), png_path=str(out_png), page=page, page_count=count, width=size[0],
                        height=size[1], scale=scale, highlights=tuple(highlights), matched_words=matched,
                        passage_words=total)


def fitting_scale(width_pt: float, height_pt: float, wanted: float) -> float:
    """`wanted` within (0, MAX_SCALE], made smaller when the page would have more than MAX_PIXELS."""
    scale = min(max(wanted, 0.05), MAX_SCALE)
    area = max(width_pt, 1.0) * max(height_pt, 1.0)
    if area * scale * scale > MAX_PIXELS:
        scale = math.sqrt(MAX_PIXELS / area)
    return scale


def _pixels(bitmap) -> np.ndarray:
    """The bitmap as rows of RGB bytes (PDFium pads each row to its stride)."""
    rows = np.frombuffer(bitmap.buffer, dtype=np.uint8).reshape(bitmap.height, bitmap.stride)
    return rows[:, :bitmap.width * bitmap.n_channels].reshape(bitmap.height, bitmap.width, bitmap.n_channels)[..., :3]


def write_png(path: Path, rgb: np.ndarray) -> None:
    """An 8-bit RGB PNG of an (height, width, 3) array: no image library needed in the child."""
    height, width, _ = rgb.shape
    raw = np.zeros((height, 1 + width * 3), dtype=np.uint8)  # each row starts with filter type 0 (none)
    raw[:, 1:] = rgb.reshape(height, width * 3)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw.tobytes(), PNG_LEVEL)) + chunk(b"IEND", b""))


def _passage_boxes(page, bitmap, passage: str) -> tuple[list[Box], int, int]:
    """The passage's lines on this page in the bitmap's pixels, and how many of its words matched."""
    passage_words = [word.norm for word in words(passage)]
    textpage = page.get_textpage()
    try:
        text, char_index = _page_text(textpage)
        page_words = words(text)
        match = match_passage([word.norm for word in page_words], passage_words)
        convert = bitmap.get_posconv(page)
        highlights: list[Box] = []
        for first, last in match.runs:
            boxes = [textpage.get_charbox(char_index(offset), loose=True)
                     for word in page_words[first:last] for offset in range(word.start, word.end)]
            highlights.extend(_to_pixels(convert, rect, bitmap.width, bitmap.height) for rect in line_rects(boxes))
    finally:
        textpage.close()
    return highlights, match.matched, match.total


def _page_text(textpage):
    """The page's text, and a function from an offset in it to PDFium's character index.

    They are the same nearly always; when a character takes two of PDFium's places (or none), the
    text is read one character at a time so that each offset keeps its index.
    """
    count = textpage.count_chars()
    text = textpage.get_text_range()
    if len(text) == count:
        return text, lambda offset: offset
    pieces = [textpage.get_text_range(index, 1) for index in range(count)]
    indices = [index for index, piece in enumerate(pieces) for _ in piece]
    return "".join(pieces), indices.__getitem__


def line_rects(boxes: list[PageRect]) -> list[PageRect]:
    """Character boxes in reading order merged into one rectangle per line (empty boxes dropped).

    A box that overlaps the current line by half its height or more joins it; any other starts a new
    line (the next line, or the next column).
    """
    lines: list[list[float]] = []
    for left, bottom, right, top in boxes:
        if right - left <= 0 or top - bottom <= 0:
            continue
        if lines:
            line = lines[-1]
            overlap = min(top, line[3]) - max(bottom, line[1])
            if overlap >= 0.5 * min(top - bottom, line[3] - line[1]):
                line[:] = [min(left, line[0]), min(bottom, line[1]), max(right, line[2]), max(top, line[3])]
                continue
        lines.append([left, bottom, right, top])
    return [(a, b, c, d) for a, b, c, d in lines]


def _to_pixels(convert, rect: PageRect, width: int, height: int) -> Box:
    """A rectangle in page points as (x, y, w, h) in the bitmap's pixels (PDFium applies any rotation)."""
    left, bottom, right, top = rect
    x1, y1 = convert.to_bitmap(left, top)
    x2, y2 = convert.to_bitmap(right, bottom)
    x, y = max(0, min(x1, x2)), max(0, min(y1, y2))
    return x, y, max(1, min(width, max(x1, x2)) - x), max(1, min(height, max(y1, y2)) - y)
