"""Documents made here (PDF, DOCX, EPUB, Markdown, HTML, text in many encodings) and bad files, read by
the readers directly and through the parser child: text with its place, or a clear reason per file."""

from __future__ import annotations

import os
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from engine.errors import Cancelled
from engine.jobs import CancelToken
from engine.rag.document import MAX_SECTION_CHARS, ParsedDocument, Section
from engine.rag.errors import (
    DamagedDocument,
    DocumentTooBig,
    EmptyDocument,
    EncryptedDocument,
    NotText,
    ReaderStopped,
    UnsafeXml,
    UnsupportedFormat,
    ZipBomb,
)
from engine.rag.loaders import load_document
from engine.rag.parse_child import TEST_HOOKS_ENV
from engine.rag.parser import DocumentParser, Limits
from engine.rag.pdf import paragraph_starts

pytestmark = pytest.mark.timeout(60)

PAGE_TEXTS = [
    "Alpha page one talks about apples.",
    "Bravo page two talks about bridges.",
    "Charlie page three talks about clouds.",
]


# --- documents made in the test ---------------------------------------------------------------------
def write_pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    if password:
        pdf.set_encryption(owner_password="owner-" + password, user_password=password)
    pdf.output(str(path))
    return path


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/'
                 '2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>')
STYLES = f"""<?xml version="1.0" encoding="UTF-8"?>
<w:styles {W}>
  <w:style w:type="paragraph" w:styleId="Standaard"><w:name w:val="Normal"/></w:style>
  <w:style w:type="paragraph" w:styleId="Kop1"><w:name w:val="heading 1"/><w:basedOn w:val="Standaard"/></w:style>
</w:styles>"""


def paragraph(text: str, style: str = "") -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>' if style else ""
    runs = "".join(f'<w:r><w:t xml:space="preserve">{part}</w:t></w:r>' if part != "\t" else "<w:r><w:tab/></w:r>"
                   for part in text.split("|"))
    return f"<w:p>{props}{runs}</w:p>"


def write_docx(path: Path, body: str, *, prolog: str = "", styles: str | None = STYLES) -> Path:
    document = f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<w:document {W}><w:body>{body}</w:body></w:document>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("word/document.xml", document)
        if styles:
            archive.writestr("word/styles.xml", styles)
    return path


def write_epub(path: Path, chapters: dict[str, str], spine: list[str]) -> Path:
    manifest = "".join(f'<item id="{name}" href="text/{name}.xhtml" media-type="application/xhtml+xml"/>'
                       for name in chapters)
    refs = "".join(f'<itemref idref="{name}"/>' for name in spine)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" xmlns='
                         '"urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path='
                         '"OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>')
        archive.writestr("OEBPS/content.opf", f'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" '
                         f'version="3.0"><manifest>{manifest}</manifest><spine>{refs}</spine></package>')
        for name, body in chapters.items():
            archive.writestr(f"OEBPS/text/{name}.xhtml", '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE html>'
                             f'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{name}</title></head>'
                             f"<body>{body}</body></html>")
    return path


def places(document: ParsedDocument, field: str) -> list[tuple]:
    return [(section.text, getattr(section, field)) for section in document.sections]


# --- PDF ----------------------------------------------------------------------------------------------
def test_a_pdf_gives_each_page_its_text_and_number(tmp_path):
    document = load_document(write_pdf(tmp_path / "three.pdf", PAGE_TEXTS))
    assert document.kind == "pdf" and document.pages == 3
    assert [section.page for section in document.sections] == [1, 2, 3]
    for section, text in zip(document.sections, PAGE_TEXTS, strict=True):
        assert " ".join(section.text.split()) == text
    assert len(document.sha256) == 64


def test_a_pdf_page_is_cut_into_its_paragraphs_by_the_gaps_between_lines(tmp_path):
    from fpdf import FPDF

    paragraphs = [" ".join(f"{word}{n}" for n in range(40)) for word in ("apple", "bridge", "cloud")]
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    for text in paragraphs:
        pdf.multi_cell(0, 6, text)  # wraps to three lines or so
        pdf.ln(6)
    pdf.output(str(tmp_path / "paragraphs.pdf"))
    document = load_document(tmp_path / "paragraphs.pdf")
    assert [" ".join(s.text.split()) for s in document.sections] == paragraphs
    assert all(s.text.count("\n") >= 1 for s in document.sections)  # the lines stay lines
    assert [s.page for s in document.sections] == [1, 1, 1]


def test_paragraph_starts_come_from_gaps_blank_lines_and_columns():
    bottoms = [800.0, 786.0, 772.0, 750.0, 736.0, None, 700.0, 686.0, 686.0, 790.0, 776.0]
    assert paragraph_starts(bottoms) == [True, False, False, True, False, True, True, False, False, True, False]


def test_an_encrypted_pdf_is_refused_as_password_protected(tmp_path):
    path = write_pdf(tmp_path / "locked.pdf", ["Secret plans."], password="hunter2")
    with pytest.raises(EncryptedDocument) as caught:
        load_document(path)
    assert "“locked.pdf” is password-protected" in caught.value.message
    assert "password" in caught.value.hint


@pytest.mark.parametrize("cut", [60, 0.5])
def test_a_truncated_or_fake_pdf_is_refused_as_damaged(tmp_path, cut):
    whole = write_pdf(tmp_path / "whole.pdf", PAGE_TEXTS).read_bytes()
    path = tmp_path / "broken.pdf"
    path.write_bytes(whole[: int(cut if cut > 1 else len(whole) * cut)])
    with pytest.raises(DamagedDocument, match="“broken.pdf” is damaged"):
        load_document(path)
    (tmp_path / "fake.pdf").write_text("this is not a PDF at all\n" * 20)
    with pytest.raises(DamagedDocument):
        load_document(tmp_path / "fake.pdf")


# --- DOCX ---------------------------------------------------------------------------------------------
def test_a_docx_keeps_paragraphs_and_heading_paths_from_localised_and_plain_style_ids(tmp_path):
    body = (paragraph("Guide", "Kop1") + paragraph("Ember reads |documents.") + paragraph("Install", "Heading2")
            + paragraph("Run|\t|pip") + paragraph("") + paragraph("Usage", "Kop1") + paragraph("Open a file."))
    document = load_document(write_docx(tmp_path / "guide.docx", body))
    assert document.kind == "docx"
    assert places(document, "heading_path") == [
        ("Guide", ("Guide",)),
        ("Ember reads documents.", ("Guide",)),
        ("Install", ("Guide", "Install")),
        ("Run\tpip", ("Guide", "Install")),
        ("Usage", ("Usage",)),
        ("Open a file.", ("Usage",)),
    ]


@pytest.mark.parametrize("attack", ["external", "billion_laughs"])
def test_a_docx_that_declares_entities_is_refused_and_never_leaks_a_local_file(tmp_path, attack):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN-42")
    if attack == "external":
        prolog = f'<!DOCTYPE w:document [<!ENTITY leak SYSTEM "file://{secret}">]>'
        text = "&leak;"
    else:
        prolog = ('<!DOCTYPE w:document [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                  '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>')
        text = "&d;"
    path = write_docx(tmp_path / "attack.docx", paragraph("Hello ") + f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>",
                      prolog=prolog)
    with pytest.raises(UnsafeXml) as caught:
        load_document(path)
    assert "“attack.docx” declares XML entities" in caught.value.message
    assert "TOP-SECRET" not in str(caught.value) and "haha" not in str(caught.value)


def test_a_docx_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b" " * (64 * 1024 * 1024))  # 64 MB that shrink ~1000 times
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(ZipBomb, match="“bomb.docx” holds 'word/document.xml', which would unpack"):
        load_document(path)


def test_a_docx_that_is_not_a_zip_is_damaged_and_an_ole_file_is_encrypted(tmp_path):
    (tmp_path / "plain.docx").write_text("just text, renamed")
    with pytest.raises(DamagedDocument, match="zip structure is broken"):
        load_document(tmp_path / "plain.docx")
    (tmp_path / "locked.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(EncryptedDocument):
        load_document(tmp_path / "locked.docx")


# --- EPUB ---------------------------------------------------------------------------------------------
def test_an_epub_reads_its_chapters_in_spine_order_with_headings(tmp_path):
    path = write_epub(tmp_path / "book.epub", {
        "two": "<h2>The Storm</h2><p>Rain &amp; wind.</p>",
        "one": "<h1>Part One</h1><p>It began.</p>",
    }, spine=["one", "two"])
    document = load_document(path)
    assert document.kind == "epub"
    assert places(document, "heading_path") == [
        ("Part One", ("Part One",)), ("It began.", ("Part One",)),
        ("The Storm", ("Part One", "The Storm")), ("Rain & wind.", ("Part One", "The Storm")),
    ]


# --- Markdown, HTML, code -----------------------------------------------------------------------------
MARKDOWN = """\
# Guide
intro line one
intro line two

## Install

```bash
# not a heading

pip install ember
```

Setext Title
============

Body under setext.
"""


def test_markdown_keeps_line_ranges_heading_paths_and_fenced_code(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(MARKDOWN)
    document = load_document(path)
    assert document.kind == "markdown" and document.encoding == "utf-8"
    assert [(s.text.split("\n")[0], s.lines, s.heading_path) for s in document.sections] == [
        ("Guide", (1, 1), ("Guide",)),
        ("intro line one", (2, 3), ("Guide",)),
        ("Install", (5, 5), ("Guide", "Install")),
        ("```bash", (7, 11), ("Guide", "Install")),
        ("Setext Title", (13, 14), ("Setext Title",)),
        ("Body under setext.", (16, 16), ("Setext Title",)),
    ]
    assert "# not a heading\n\npip install ember" in document.sections[3].text


def test_html_gives_visible_text_under_headings_without_script_or_style(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("""<!DOCTYPE html><html><head><title>Tab title</title>
        <style>body { color: red }</style><script>var leaked = "SCRIPT";</script>
        <link rel="stylesheet" href="http://127.0.0.1:9/never.css"></head>
        <body><h1>Manual</h1><p>First   paragraph,
        wrapped.</p><div>Second &amp; <b>bold</b></div>
        <h2>Details <small>(v2)</small></h2><ul><li>one</li><li>two</li></ul>
        <pre>  x = 1
  y = 2</pre><noscript>NOSCRIPT</noscript><img src="http://127.0.0.1:9/x.png"></body></html>""")
    document = load_document(path)
    assert places(document, "heading_path") == [
        ("Manual", ("Manual",)),
        ("First paragraph, wrapped.", ("Manual",)),
        ("Second & bold", ("Manual",)),
        ("Details (v2)", ("Manual", "Details (v2)")),
        ("one", ("Manual", "Details (v2)")),
        ("two", ("Manual", "Details (v2)")),
        ("  x = 1\n  y = 2", ("Manual", "Details (v2)")),
    ]
    assert not {"SCRIPT", "color", "NOSCRIPT", "Tab title"} & set(document.text.split())


def test_source_code_and_text_keep_paragraph_line_ranges_and_cut_overlong_paragraphs(tmp_path):
    code = tmp_path / "tool.py"
    code.write_text("import os\n\n\ndef main():\n    return os.getcwd()\n")
    document = load_document(code)
    assert document.kind == "code"
    assert places(document, "lines") == [("import os", (1, 1)), ("def main():\n    return os.getcwd()", (4, 5))]
    long = tmp_path / "long.txt"
    long.write_text("\n".join(f"line {n} " + "x" * 90 for n in range(1, 201)) + "\n" + "y" * 9000 + "\n")
    sections = load_document(long).sections
    assert all(len(section.text) <= MAX_SECTION_CHARS for section in sections)
    ranges = [section.lines for section in sections if section.lines != (201, 201)]
    assert len(ranges) > 1 and ranges[0][0] == 1 and ranges[-1][1] == 200
    assert all(after[0] == before[1] + 1 for before, after in zip(ranges, ranges[1:], strict=False))
    assert "".join(s.text for s in sections if s.lines == (201, 201)) == "y" * 9000


# --- text encodings -----------------------------------------------------------------------------------
FRENCH = ("Le café crème coûte 5 € à la brasserie « Chez Hélène ». Où est la gare ? "
          "Naïve façade, déjà vu, œuvre, garçon, très élégant.\n") * 8
FRENCH_SHORT = "Le café crème coûte 5 € à la brasserie « Chez Hélène ». Naïve façade, déjà vu, garçon.\n" * 40
POLISH = "Zażółć gęślą jaźń. Właściwie każdy człowiek potrzebuje książki. Łódź jest dużym miastem.\n" * 6
JAPANESE = "日本語のテキストです。これは文字コードの検出のテストです。東京は日本の首都です。\n" * 8


@pytest.mark.parametrize("text, encoding, expected", [
    ("naïve café — 日本語 ✓\n", "utf-8", "utf-8"),
    ("naïve café — 日本語 ✓\n", "utf-8-sig", "utf-8"),
    ("UTF-16 text: Grüße, 日本語\n", "utf-16", "utf-16"),
    (FRENCH, "cp1252", "cp1252"),
    (FRENCH_SHORT, "cp1252", "cp1252"),  # charset-normalizer alone says cp1257 ("crčme")
    (POLISH, "cp1250", "cp1250"),
    (JAPANESE, "shift_jis", ("shift_jis", "cp932")),
])
def test_text_in_any_encoding_is_detected(tmp_path, text, encoding, expected):
    path = tmp_path / "note.txt"
    path.write_bytes(text.encode(encoding))
    document = load_document(path)
    assert document.encoding in (expected if isinstance(expected, tuple) else (expected,))
    assert document.text == text.strip()
    assert document.sections[0].lines == (1, len(text.strip().split("\n")))


# --- bad files ----------------------------------------------------------------------------------------
def test_a_binary_file_named_txt_is_not_a_text_file(tmp_path):
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64)
    with pytest.raises(NotText, match="“photo.txt” is not a text file"):
        load_document(path)


def test_empty_and_blank_files_are_empty(tmp_path):
    (tmp_path / "empty.md").write_bytes(b"")
    with pytest.raises(EmptyDocument, match="“empty.md” is empty"):
        load_document(tmp_path / "empty.md")
    (tmp_path / "blank.txt").write_text("\n   \n\t\n")
    with pytest.raises(EmptyDocument, match="“blank.txt” holds no text"):
        load_document(tmp_path / "blank.txt")


def test_a_200_mb_text_file_is_refused_as_too_big_without_being_read(tmp_path):
    path = tmp_path / "huge.log"
    with open(path, "wb") as file:
        file.truncate(200 * 1024 * 1024)  # sparse: no disk, no time
    started = time.monotonic()
    with pytest.raises(DocumentTooBig, match="“huge.log” is 200 MB; Ember reads files of this kind up to 32 MB"):
        load_document(path)
    assert time.monotonic() - started < 0.5


def test_an_unknown_extension_is_not_a_supported_document(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    with pytest.raises(UnsupportedFormat, match="“model.gguf” is not a supported document: Ember does not read "
                                                "“.gguf” files"):
        load_document(path)


def test_a_document_survives_json_both_ways():
    document = ParsedDocument("a.md", "markdown", [Section("x", lines=(1, 2), heading_path=("A", "B")),
                                                   Section("y", page=3)], pages=None, encoding="utf-8",
                              sha256="0" * 64)
    assert ParsedDocument.from_dict(document.to_dict()) == document


# --- the parser child ---------------------------------------------------------------------------------
@pytest.fixture
def make_parser(tmp_path):
    parsers: list[DocumentParser] = []

    def make(**limits) -> DocumentParser:
        parser = DocumentParser(Limits(**{"memory_bytes": 2 * 1024**3, "wall_s": 30.0, **limits}),
                                log_dir=tmp_path / "logs")
        parsers.append(parser)
        return parser

    yield make
    for parser in parsers:
        parser.close()


def test_the_parser_reads_every_file_in_one_child_and_a_bad_file_costs_only_that_file(tmp_path, make_parser):
    pdf = write_pdf(tmp_path / "three.pdf", PAGE_TEXTS)
    (tmp_path / "guide.md").write_text(MARKDOWN)
    (tmp_path / "photo.txt").write_bytes(bytes(range(256)) * 8)
    docx = write_docx(tmp_path / "guide.docx", paragraph("Guide", "Kop1") + paragraph("Body."))
    parser = make_parser()
    results = list(parser.parse_many([pdf, tmp_path / "guide.md", tmp_path / "photo.txt", docx,
                                      tmp_path / "notes.xyz"]))
    assert [type(r).__name__ for r in results] == ["ParsedDocument", "ParsedDocument", "NotText",
                                                   "ParsedDocument", "UnsupportedFormat"]
    assert [s.page for s in results[0].sections] == [1, 2, 3] and results[0].pages == 3
    assert results[1] == load_document(tmp_path / "guide.md")
    assert results[2].path == str(tmp_path / "photo.txt") and "not a text file" in results[2].message
    assert places(results[3], "heading_path") == [("Guide", ("Guide",)), ("Body.", ("Guide",))]
    assert parser.starts == 1


@pytest.fixture
def test_hooks(monkeypatch):
    monkeypatch.setenv(TEST_HOOKS_ENV, "1")


def test_a_crash_fails_that_file_with_the_reason_and_the_next_file_still_parses(tmp_path, make_parser, test_hooks):
    (tmp_path / "a.md").write_text("# A\nfirst\n")
    crash = write_pdf(tmp_path / "ember-test-crash.pdf", ["boom"])
    (tmp_path / "b.md").write_text("# B\nsecond\n")
    parser = make_parser()
    first, failed, second = parser.parse_many([tmp_path / "a.md", crash, tmp_path / "b.md"])
    assert isinstance(failed, ReaderStopped)
    assert failed.message == "Ember's document reader stopped on “ember-test-crash.pdf”: it crashed (SIGABRT)."
    assert failed.path == str(crash)
    assert first.sections[-1].text == "first" and second.sections[-1].text == "second"
    assert parser.starts == 2


def test_a_hang_is_killed_after_the_time_limit_and_the_next_file_still_parses(tmp_path, make_parser, test_hooks):
    (tmp_path / "ember-test-hang.txt").write_text("never read\n")
    (tmp_path / "after.txt").write_text("read after the hang\n")
    parser = make_parser(wall_s=1.0)
    started = time.monotonic()
    with pytest.raises(ReaderStopped, match="stopped on “ember-test-hang.txt”: it took longer than 1 s"):
        parser.parse(tmp_path / "ember-test-hang.txt")
    assert time.monotonic() - started < 1.0 + 3.0
    assert parser.parse(tmp_path / "after.txt").text == "read after the hang"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is reliable on Linux")
def test_a_memory_blow_up_fails_that_file_and_the_same_child_reads_on(tmp_path, make_parser, test_hooks):
    (tmp_path / "ember-test-memory.txt").write_text("greedy\n")
    (tmp_path / "after.txt").write_text("still here\n")
    parser = make_parser(memory_bytes=1024**3)
    greedy, after = parser.parse_many([tmp_path / "ember-test-memory.txt", tmp_path / "after.txt"])
    assert isinstance(greedy, DocumentTooBig)
    assert greedy.message == "“ember-test-memory.txt” needs more memory than Ember lets its document reader use."
    assert after.text == "still here" and parser.starts == 1


def test_cancel_stops_the_file_being_read_and_raises_cancelled(tmp_path, make_parser, test_hooks):
    (tmp_path / "ember-test-hang.md").write_text("# never\n")
    parser = make_parser()
    cancel = CancelToken()
    threading.Timer(0.3, cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        list(parser.parse_many([tmp_path / "ember-test-hang.md"], cancel))
    assert time.monotonic() - started < 5.0
    (tmp_path / "after.md").write_text("read by a fresh reader\n")
    assert parser.parse(tmp_path / "after.md").text == "read by a fresh reader"
    assert parser.starts == 2  # the cancelled file's reader was stopped


def test_an_unsupported_file_is_refused_without_starting_a_child(tmp_path, make_parser):
    parser = make_parser()
    with pytest.raises(UnsupportedFormat):
        parser.parse(tmp_path / "model.gguf")
    assert parser.starts == 0


def test_the_hooks_are_off_without_the_variable(tmp_path, make_parser, monkeypatch):
    monkeypatch.delenv(TEST_HOOKS_ENV, raising=False)
    (tmp_path / "ember-test-crash.txt").write_text("harmless\n")
    assert make_parser().parse(tmp_path / "ember-test-crash.txt").text == "harmless"
    assert os.environ.get(TEST_HOOKS_ENV) is None
