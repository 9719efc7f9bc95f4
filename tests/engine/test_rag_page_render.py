"""A PDF page drawn in the document child for the source viewer: a real PNG of the page's size, and the
cited passage's lines as rectangles where fpdf2 wrote that text; clear errors for a missing page or a
bad file; the child's limits hold for drawing as for reading."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.rag.errors import DamagedDocument, DocumentError, EncryptedDocument, NoSuchPage, ReaderStopped
from engine.rag.page_render import MAX_PIXELS, fitting_scale, line_rects, write_png
from engine.rag.parse_child import TEST_HOOKS_ENV
from engine.rag.parser import DocumentParser, Limits
from engine.rag.passage_match import match_passage, words

pytestmark = pytest.mark.timeout(60)

MM = 72 / 25.4  # PDF points per millimetre (fpdf2 measures in mm)
LINE_MM = 8  # the height of each line fpdf2 writes here
MARGIN_MM = 10  # fpdf2's left margin
SENTENCE = ("The suspension bridge over the gorge was finished in 1931 by the valley's miners, and it still "
            "carries the old post road across the river today.")
PAGE_ONE_END = "Night trains leave the northern station every hour until midnight."
PAGE_TWO_START = "Morning ferries cross the bay twice before the markets open."


@dataclass
class Layout:
    """Where fpdf2 wrote each text: (page, top, bottom) in mm from the page's top."""

    places: dict[str, tuple[int, float, float]]


def write_three_pages(path: Path) -> Layout:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    places: dict[str, tuple[int, float, float]] = {}

    def write(key: str, text: str) -> None:
        top = pdf.get_y()
        pdf.multi_cell(0, LINE_MM, text, new_x="LMARGIN", new_y="NEXT")
        places[key] = (pdf.page_no(), top, pdf.get_y())

    pdf.add_page()
    write("intro1", "Page one is about the railway and how its timetable grew over the years.")
    pdf.ln(8)
    write("end1", PAGE_ONE_END)
    pdf.add_page()
    write("start2", PAGE_TWO_START)
    pdf.ln(16)
    write("sentence", SENTENCE)
    pdf.ln(8)
    write("after", "A last line about fishing boats and nets.")
    pdf.add_page()
    write("page3", "Page three lists the lighthouses of the coast.")
    pdf.output(str(path))
    return Layout(places)


@pytest.fixture
def three_pages(tmp_path) -> tuple[Path, Layout]:
    path = tmp_path / "valley.pdf"
    return path, write_three_pages(path)


@pytest.fixture
def parser(tmp_path):
    parser = DocumentParser(Limits(memory_bytes=2 * 1024**3, wall_s=30.0), log_dir=tmp_path / "logs")
    yield parser
    parser.close()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def within(boxes, layout: Layout, key: str, scale: float, slack_px: float = 6) -> bool:
    """Every box lies inside the vertical band fpdf2 wrote `key` in."""
    _, top, bottom = layout.places[key]
    return all(top * MM * scale - slack_px <= y and y + h <= bottom * MM * scale + slack_px for _, y, _, h in boxes)


def dark_pixels(image: Image.Image, box) -> int:
    x, y, w, h = box
    return int((np.asarray(image.crop((x, y, x + w, y + h)).convert("L")) < 128).sum())


# --- drawing a page -----------------------------------------------------------------------------------
def test_page_two_is_drawn_at_its_size_with_the_sentence_highlighted_where_it_was_written(tmp_path, three_pages,
                                                                                       parser):
    path, layout = three_pages
    passage = f"{PAGE_TWO_START}\n\n{SENTENCE}"[len(PAGE_TWO_START) + 2:]  # the sentence, as a chunk holds it
    rendered = parser.render_page(path, 2, passage, tmp_path / "page2.png", scale=2.0)
    assert (rendered.page, rendered.page_count, rendered.scale) == (2, 3, 2.0)
    assert png_size(Path(rendered.png_path)) == (rendered.width, rendered.height)
    assert abs(rendered.width - 210 * MM * 2) <= 1 and abs(rendered.height - 297 * MM * 2) <= 1  # A4 at 144 dpi
    assert within(rendered.highlights, layout, "sentence", rendered.scale)
    _, top, bottom = layout.places["sentence"]
    lines = round((bottom - top) / LINE_MM)
    assert lines >= 2 and len(rendered.highlights) == lines  # the sentence wraps: one rectangle per line
    for number, (x, y, w, h) in enumerate(rendered.highlights):  # each in its line's band, from the margin
        middle_mm = (y + h / 2) / (MM * rendered.scale)
        assert top + number * LINE_MM < middle_mm < top + (number + 1) * LINE_MM
        assert x <= (MARGIN_MM + 2) * MM * rendered.scale and w > 50
    image = Image.open(rendered.png_path)
    assert all(dark_pixels(image, box) > 20 for box in rendered.highlights)  # text under every rectangle
    assert rendered.matched_words == rendered.passage_words == len(words(SENTENCE))


def test_a_passage_that_is_not_on_the_page_gives_no_highlights(tmp_path, three_pages, parser):
    path, _ = three_pages
    rendered = parser.render_page(path, 2, "Page three lists the lighthouses of the coast.", tmp_path / "p.png")
    assert rendered.highlights == () and rendered.matched_words == 0 and not rendered.found
    assert Path(rendered.png_path).stat().st_size > 1000  # the page is still drawn


def test_a_chunk_across_a_page_break_is_highlighted_on_each_page_only_where_its_part_is(tmp_path, three_pages,
                                                                                      parser):
    path, layout = three_pages
    passage = f"{PAGE_ONE_END}\n{PAGE_TWO_START}"
    second = parser.render_page(path, 2, passage, tmp_path / "p2.png")
    assert second.highlights and within(second.highlights, layout, "start2", second.scale)
    assert second.matched_words == len(words(PAGE_TWO_START))
    first = parser.render_page(path, 1, passage, tmp_path / "p1.png")
    assert first.highlights and within(first.highlights, layout, "end1", first.scale)
    assert first.matched_words == len(words(PAGE_ONE_END))
    assert parser.starts == 1  # one child drew both


def test_a_page_out_of_range_is_a_clear_error(tmp_path, three_pages, parser):
    path, _ = three_pages
    with pytest.raises(NoSuchPage) as caught:
        parser.render_page(path, 9, SENTENCE, tmp_path / "p.png")
    assert caught.value.message == "“valley.pdf” has 3 pages; there is no page 9."
    assert "changed since it was indexed" in caught.value.hint
    assert not (tmp_path / "p.png").exists()
    assert parser.render_page(path, 3, "", tmp_path / "p3.png").page == 3  # the same child goes on


def test_a_corrupt_or_encrypted_pdf_is_a_clear_error_not_a_crash(tmp_path, three_pages, parser):
    path, _ = three_pages
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DamagedDocument, match="“broken.pdf” is damaged or not a PDF"):
        parser.render_page(broken, 1, "", tmp_path / "p.png")
    from fpdf import FPDF

    locked = FPDF()
    locked.add_page()
    locked.set_font("helvetica", size=12)
    locked.cell(0, 8, "Secret")
    locked.set_encryption(owner_password="owner", user_password="user")
    locked.output(str(tmp_path / "locked.pdf"))
    with pytest.raises(EncryptedDocument, match="password-protected"):
        parser.render_page(tmp_path / "locked.pdf", 1, "", tmp_path / "p.png")
    with pytest.raises(DocumentError, match="is not a PDF"):
        parser.render_page(tmp_path / "notes.txt", 1, "", tmp_path / "p.png")
    assert parser.starts == 1


def test_drawing_a_page_obeys_the_time_limit_and_parsing_still_works_after_it(tmp_path, three_pages, monkeypatch):
    monkeypatch.setenv(TEST_HOOKS_ENV, "1")
    path, _ = three_pages
    hang = tmp_path / "ember-test-hang.pdf"
    hang.write_bytes(path.read_bytes())
    with DocumentParser(Limits(memory_bytes=2 * 1024**3, wall_s=1.0), log_dir=tmp_path / "logs") as parser:
        started = time.monotonic()
        with pytest.raises(ReaderStopped, match="it took longer than 1 s"):
            parser.render_page(hang, 1, "", tmp_path / "p.png")
        assert time.monotonic() - started < 4.0
        assert parser.parse(path).pages == 3
        assert parser.render_page(path, 2, SENTENCE, tmp_path / "p2.png").highlights


# --- the parts ----------------------------------------------------------------------------------------
def test_common_words_alone_do_not_make_a_match_but_a_run_does():
    page = [w.norm for w in words("The cat sat on the mat and the dog ran to the park in the rain.")]
    assert match_passage(page, [w.norm for w in words("the and in the")]).runs == ()
    found = match_passage(page, [w.norm for w in words("THE DOG ran   to\nthe park")])
    assert found.runs == ((7, 13),) and found.found
    gap = match_passage(page, [w.norm for w in words("the cat sat on a mat and the dog")])  # one word differs
    assert gap.runs == ((0, 9),)


def test_character_boxes_merge_into_one_rectangle_per_line():
    line_one = [(10.0 + 6 * i, 700.0, 15.0 + 6 * i, 712.0) for i in range(5)]
    line_two = [(10.0 + 6 * i, 686.0, 15.0 + 6 * i, 698.0) for i in range(3)]
    empty = [(40.0, 700.0, 40.0, 700.0)]  # PDFium's generated line break
    assert line_rects(line_one + empty + line_two) == [(10.0, 700.0, 39.0, 712.0), (10.0, 686.0, 27.0, 698.0)]


def test_a_poster_sized_page_is_drawn_smaller_and_the_png_writer_is_a_real_png(tmp_path):
    assert fitting_scale(595, 842, 2.0) == 2.0
    huge = fitting_scale(14400, 14400, 2.0)
    assert huge < 2.0 and 14400 * huge * 14400 * huge <= MAX_PIXELS * 1.0001
    pixels = np.zeros((3, 4, 3), dtype=np.uint8)
    pixels[1, 2] = (255, 10, 20)
    write_png(tmp_path / "tiny.png", pixels)
    image = Image.open(tmp_path / "tiny.png")
    assert image.size == (4, 3) and image.getpixel((2, 1)) == (255, 10, 20) and image.getpixel((0, 0)) == (0, 0, 0)
