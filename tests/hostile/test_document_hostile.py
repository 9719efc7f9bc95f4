"""Hostile documents through Ember's reader child (DocumentParser) and the indexer: each bad file
fails alone with a message that names it, the reader goes on with the next file, nothing from a file
Ember refused reaches the index, and nothing is fetched from the network when a document or a reply
is read or drawn.

The loaders' unit cases (an encrypted PDF, a DOCX declaring entities, an honest zip bomb, a binary
.txt, a 200 MB file refused by its size) are in tests/engine/test_rag_parse.py, with the reader's
crash, hang and memory hooks; here the same kinds of attack come as real files through the child
and the index, with the variants those tests do not make (a decompression bomb, a cyclic PDF, a
zip that lies about its sizes, parameter entities, huge lines, encodings, races, permissions)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pytest

from engine.jobs import run_to_end
from engine.paths import EmberPaths
from engine.rag.document import MAX_SECTION_CHARS
from engine.rag.errors import DocumentError
from engine.rag.indexer import find_files, index_collection
from engine.rag.parser import DEFAULT_LIMITS, DocumentParser, Limits
from engine.rag.source_text import read_source_text
from engine.rag.tokens import HostTokenCounter
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository
from tests.engine.test_rag_parse import paragraph, write_docx, write_epub, write_pdf
from tests.support.hostile_documents import (
    XXE_PROLOGS,
    XXE_USES,
    MiB,
    address_space_limit,
    peak_rss_bytes,
    reader_children,
    recording_server,
    write_cyclic_pdf,
    write_lying_docx,
    write_many_entries_docx,
    write_one_line,
    write_pdf_bomb,
    write_plain_pdf,
    write_sparse,
)
from tests.support.hostile_storage import (
    ROOT,
    as_nobody,
    can_switch_to_nobody,
    python,
    python_env,
    running_as_root,
)

pytestmark = pytest.mark.timeout(180)

SECRET = "TOP-SECRET-TOKEN-42"
AFTER = "The reader is still here after the bad file."
READER_MEMORY = 2 * 1024**3  # the app's own limit (DEFAULT_LIMITS), kept in the tests


@pytest.fixture
def parser(tmp_path):
    with DocumentParser(Limits(memory_bytes=READER_MEMORY, wall_s=60.0), log_dir=tmp_path / "logs") as reader:
        yield reader


@pytest.fixture
def after(tmp_path) -> Path:
    path = tmp_path / "after.txt"
    path.write_text(AFTER + "\n", encoding="utf-8")
    return path


def refused(parser: DocumentParser, path: Path, after: Path) -> DocumentError:
    """Parse the bad file and then a good one: the bad one's error (it must fail), the good one read."""
    first, second = parser.parse_many([path, after])
    assert isinstance(first, DocumentError), f"{path.name} was read: {first}"
    assert first.path == str(path) and f"“{path.name}”" in first.message  # names the file
    assert second.text == AFTER  # the next file is read
    return first


# --- the reader's limits -------------------------------------------------------------------------------
def test_the_reader_child_runs_under_a_memory_limit_and_a_time_limit_per_file(parser, after):
    assert DEFAULT_LIMITS.memory_bytes == READER_MEMORY and DEFAULT_LIMITS.wall_s is not None
    assert parser.parse(after).text == AFTER
    (pid,) = reader_children()
    assert address_space_limit(pid) == READER_MEMORY  # RLIMIT_AS in the child, as the kernel sees it
    # what a hang and a memory blow-up cost: tests/engine/test_rag_parse.py::test_a_hang_is_killed_after_the_time_limit_...


# --- PDF -----------------------------------------------------------------------------------------------
def test_an_encrypted_pdf_fails_alone_as_password_protected(parser, tmp_path, after):
    path = write_pdf(tmp_path / "locked.pdf", ["Secret plans."], password="hunter2")
    error = refused(parser, path, after)
    assert error.kind == "encrypted" and "“locked.pdf” is password-protected" in error.message
    assert parser.starts == 1  # a refusal, not a crash


def test_a_pdf_decompression_bomb_costs_that_file_only(parser, tmp_path, after):
    path = write_pdf_bomb(tmp_path / "bomb.pdf", 1024 * MiB)
    assert path.stat().st_size < 2 * MiB  # a thousandfold on unpacking
    error = refused(parser, path, after)
    # PDFium meets the reader's memory limit: it aborts (the child is replaced) or says it cannot
    assert error.kind in ("reader_stopped", "too_big", "damaged"), error
    if error.kind == "reader_stopped":
        assert error.message.startswith("Ember's document reader stopped on “bomb.pdf”: it crashed")
        assert "made to attack document readers" in error.hint


def test_a_pdf_whose_xref_and_page_tree_point_at_themselves_is_read_once(parser, tmp_path, after):
    document = parser.parse(write_cyclic_pdf(tmp_path / "cycle.pdf", "Cycle page"))
    assert [s.text for s in document.sections] == ["Cycle page"] and document.pages == 1
    assert parser.parse(after).text == AFTER and parser.starts == 1


def test_a_pdf_page_five_metres_wide_is_drawn_within_the_pixel_cap(parser, tmp_path):
    """The source viewer draws a cited page in the same child: a page-size bomb must not become a 3 GB bitmap."""
    from engine.rag.page_render import MAX_PIXELS
    from tests.support.hostile_documents import PDF_FONT, pdf_bytes, stream, text_content

    path = tmp_path / "poster.pdf"
    path.write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>", stream(text_content("Huge page")), PDF_FONT]))
    page = parser.render_page(path, 1, "Huge page", tmp_path / "poster.png")
    assert page.width * page.height <= MAX_PIXELS * 1.001 and page.matched_words == 2  # 40 million, give or take rounding
    assert (tmp_path / "poster.png").stat().st_size > 0


def test_drawing_a_page_of_the_pdf_bomb_costs_that_page_only(parser, tmp_path, after):
    bomb = write_pdf_bomb(tmp_path / "bomb.pdf", 1024 * MiB)
    with pytest.raises(DocumentError) as failed:
        parser.render_page(bomb, 1, "Bomb page", tmp_path / "bomb.png")
    assert "“bomb.pdf”" in failed.value.message
    assert not (tmp_path / "bomb.png").exists() or (tmp_path / "bomb.png").stat().st_size == 0  # no picture half drawn
    assert parser.parse(after).text == AFTER


# --- DOCX ----------------------------------------------------------------------------------------------
def test_a_docx_that_lies_about_its_unpacked_size_is_stopped_at_the_lie(parser, tmp_path, after):
    path = write_lying_docx(tmp_path / "liar.docx", 300 * MiB)  # says 4 KB, unpacks to 300 MB
    error = refused(parser, path, after)
    assert error.kind == "damaged" and "its part 'word/document.xml' cannot be unpacked" in error.message
    (pid,) = reader_children()
    print(f"reader peak RSS after the lying DOCX: {peak_rss_bytes(pid) / MiB:.0f} MiB")
    assert peak_rss_bytes(pid) < 120 * MiB  # stopped a MiB past the lie, not at the 128 MiB cap per part


def test_a_docx_of_twenty_thousand_parts_is_refused_before_it_is_unpacked(parser, tmp_path, after):
    error = refused(parser, write_many_entries_docx(tmp_path / "swarm.docx", 20_001), after)
    assert error.kind == "zip_bomb" and "holds 20,002 files; a document holds far fewer" in error.message


@pytest.mark.parametrize("attack", sorted(XXE_PROLOGS))
def test_a_docx_declaring_entities_is_refused_by_the_reader_and_leaks_nothing(parser, tmp_path, after, attack):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    body = paragraph("Hello") + f"<w:p><w:r><w:t>{XXE_USES[attack]}</w:t></w:r></w:p>"
    path = write_docx(tmp_path / "attack.docx", body, prolog=XXE_PROLOGS[attack].replace("{secret}", str(secret)))
    error = refused(parser, path, after)
    assert error.kind == "unsafe_xml" and "declares XML entities" in error.message
    assert SECRET not in str(error) and "hahaha" not in str(error)


def test_an_epub_chapter_with_an_external_entity_shows_no_file_content(parser, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    plain = write_epub(tmp_path / "plain.epub", {"one": "<p>Chapter one.</p>", "two": "<p>replaced</p>"},
                       ["one", "two"])
    path = tmp_path / "book.epub"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as archive:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "OEBPS/text/two.xhtml":  # this chapter declares the entity itself
                data = (f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY leak SYSTEM "file://{secret}">]>'
                        '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Chapter two &leak; ends.</p>'
                        "</body></html>").encode()
            archive.writestr(entry, data)
    document = parser.parse(path)
    assert "Chapter one." in document.text and "Chapter two" in document.text  # read as HTML: no entity resolved
    assert SECRET not in json.dumps(document.to_dict())


def epub_with_package(path: Path, package: str, chapters: dict[str, str]) -> Path:
    """An EPUB whose content.opf is given whole (a hostile spine or manifest)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" xmlns='
                         '"urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path='
                         '"OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>')
        archive.writestr("OEBPS/content.opf", package, compress_type=zipfile.ZIP_STORED)  # under the ratio check
        for name, body in chapters.items():
            archive.writestr(f"OEBPS/{name}", f'<html xmlns="http://www.w3.org/1999/xhtml"><body>{body}</body></html>')
    return path


def test_an_epub_whose_spine_lists_one_chapter_100000_times_reads_it_once(parser, tmp_path):
    package = ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><manifest>'
               '<item id="c" href="c.xhtml" media-type="application/xhtml+xml"/></manifest><spine>'
               + '<itemref idref="c"/>' * 100_000 + "</spine></package>")
    document = parser.parse(epub_with_package(tmp_path / "echo.epub", package, {"c.xhtml": "<p>Said once.</p>"}))
    assert [s.text for s in document.sections] == ["Said once."]


def test_an_epub_chapter_pointing_outside_the_archive_reads_no_local_file(parser, tmp_path, after):
    secret = tmp_path / "secret.xhtml"
    secret.write_text(f"<p>{SECRET}</p>")
    hrefs = ["../../secret.xhtml", str(secret), f"file://{secret}"]
    manifest = "".join(f'<item id="i{n}" href="{href}" media-type="application/xhtml+xml"/>' for n, href in enumerate(hrefs))
    package = ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><manifest>'
               f'{manifest}</manifest><spine>' + "".join(f'<itemref idref="i{n}"/>' for n in range(len(hrefs)))
               + "</spine></package>")
    error = refused(parser, epub_with_package(tmp_path / "escape.epub", package, {}), after)
    assert error.kind == "damaged" and "lacks its part" in error.message  # looked up inside the archive only
    assert SECRET not in str(error)


# --- big files -----------------------------------------------------------------------------------------
def test_a_500_mb_text_file_is_refused_by_its_size_and_the_reader_stays_small(parser, tmp_path, after):
    path = write_sparse(tmp_path / "huge.txt", 500 * MiB)
    error = refused(parser, path, after)
    assert error.kind == "too_big" and "“huge.txt” is 500 MB; Ember reads files of this kind up to 32 MB" in error.message
    (pid,) = reader_children()
    print(f"reader peak RSS after the 500 MB file: {peak_rss_bytes(pid) / MiB:.0f} MiB")
    assert peak_rss_bytes(pid) < 200 * MiB  # it was never read


def test_a_single_100_mb_line_is_refused_by_its_size(parser, tmp_path, after):
    error = refused(parser, write_one_line(tmp_path / "line.txt", 100 * MiB), after)
    assert error.kind == "too_big" and "is 100 MB" in error.message


def test_a_single_30_mb_line_under_the_limit_is_cut_into_sections_within_the_memory_limit(parser, tmp_path):
    size = 30 * MiB
    document = parser.parse(write_one_line(tmp_path / "minified.txt", size))
    assert all(len(s.text) <= MAX_SECTION_CHARS and s.lines == (1, 1) for s in document.sections)
    assert sum(len(s.text) for s in document.sections) >= size * 0.99  # only the cut spaces are gone
    (pid,) = reader_children()
    peak = peak_rss_bytes(pid)
    print(f"reader peak RSS for one 30 MB line: {peak / MiB:.0f} MiB (limit {READER_MEMORY / MiB:.0f} MiB)")
    assert peak < READER_MEMORY


def test_millions_of_one_letter_paragraphs_are_refused_in_the_reader_not_carried_to_the_app(parser, tmp_path, after):
    """8 MB of "a\\n\\n" used to reach the app as 2.8 million sections: 1.6 GB of the app's memory."""
    path = tmp_path / "confetti.txt"
    path.write_bytes(b"a\n\n" * (2 * MiB // 3))
    error = refused(parser, path, after)
    assert error.kind == "too_big"
    assert error.message == "“confetti.txt” has 699,050 paragraphs; Ember reads documents of up to 200,000."


# --- inputs made to make a reader work for hours ---------------------------------------------------------
SLOW_READER_S = 30.0  # far more than either file needs once read in one pass; the hours they took before


@pytest.mark.parametrize("name, content", [
    ("heading.md", "# a" + " \t" * 500_000 + "#x\n\nAfter the heading.\n"),  # a lazy title before a closing run
    ("tags.html", "<p>Before the tags.</p>" + '<a "' * 100_000),  # tags that never close, tried again at each "<"
    ("comments.html", "<p>Before the comments.</p>" + "<!--" * 100_000),
], ids=["markdown heading of 1 MB blanks", "HTML of unclosed tags", "HTML of unclosed comments"])
def test_a_file_made_to_backtrack_for_hours_is_read_in_one_pass(tmp_path, name, content):
    """Both used to be quadratic (about 3 hours for the heading): the reader's time limit would have
    stopped them, at the cost of that file and two minutes; now they are read."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with DocumentParser(Limits(memory_bytes=READER_MEMORY, wall_s=SLOW_READER_S), log_dir=tmp_path / "logs") as reader:
        document = reader.parse(path)
    assert document.sections and ("After the heading." in document.text or "Before the" in document.text)


# --- text encodings ------------------------------------------------------------------------------------
def test_nul_bytes_in_a_txt_fail_that_file_as_binary(parser, tmp_path, after):
    path = tmp_path / "nul.txt"
    path.write_bytes(b"looks like text\x00but is not\x00\x00\n" * 50)
    error = refused(parser, path, after)
    assert error.kind == "binary" and "is not a text file" in error.message


def test_invalid_utf8_in_a_utf8_file_is_read_with_the_broken_bytes_replaced(parser, tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes("Crème brûlée, café, naïve façade.\n".encode() * 20 + b"broken \xff\xfe\xc3( bytes\n")
    document = parser.parse(path)
    assert document.encoding == "utf-8"
    assert "Crème brûlée, café, naïve façade." in document.text  # not turned into another code page
    assert "broken \ufffd\ufffd\ufffd( bytes" in document.text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_or_without_a_byte_order_mark_is_read(parser, tmp_path, encoding):
    text = "Ember reads UTF-16 notes.\nÉté, naïve, Ωmega.\n"
    path = tmp_path / f"{encoding}.txt"
    path.write_bytes(text.encode(encoding))  # "utf-16" writes a BOM; -le/-be write none (Notepad's "Unicode" without it)
    document = parser.parse(path)
    assert document.text == text.strip()
    assert document.encoding.startswith("utf-16")


# --- the file system ----------------------------------------------------------------------------------
def test_symlink_loops_are_not_followed_and_a_looping_path_fails_alone(parser, tmp_path, after):
    folder = tmp_path / "loops"
    folder.mkdir()
    (folder / "real.txt").write_text("The only real file.\n")
    (folder / "again").symlink_to(folder, target_is_directory=True)  # a folder that contains itself
    (folder / "self.txt").symlink_to(folder / "self.txt")
    (folder / "a.txt").symlink_to(folder / "b.txt")
    (folder / "b.txt").symlink_to(folder / "a.txt")
    assert find_files([folder]) == [(folder / "real.txt").resolve()]
    error = refused(parser, folder / "self.txt", after)
    assert "“self.txt” cannot be read: Too many levels of symbolic links" in error.message


def test_pipes_and_devices_in_a_folder_are_skipped_and_never_block_a_read(parser, tmp_path, after):
    folder = tmp_path / "special"
    folder.mkdir()
    (folder / "real.md").write_text("# Real\n\nThe only document.\n")
    os.mkfifo(folder / "pipe.txt")  # reading it would wait for a writer for ever
    (folder / "zero.txt").symlink_to("/dev/zero")  # endless NULs
    (folder / "random.md").symlink_to("/dev/urandom")  # endless noise
    assert find_files([folder]) == [(folder / "real.md").resolve()]
    for name in ("pipe.txt", "zero.txt"):
        error = refused(parser, folder / name, after)
        assert error.message == f"“{name}” is not a file."


def make_repo(ember_home) -> DocumentsRepository:
    return DocumentsRepository(connect(EmberPaths(ember_home).ensure().db))



def test_a_file_that_vanishes_after_the_scan_or_before_the_read_fails_alone(ember_home, tmp_path, parser,
                                                                             embedding_client):
    folder = tmp_path / "notes"
    folder.mkdir()
    for name in ("keep.txt", "gone-before-hash.txt", "gone-before-read.txt"):
        (folder / name).write_text(f"{name} holds words about lighthouses and ferries.\n")
    files = find_files([folder])
    (folder / "gone-before-hash.txt").unlink()  # between the scan and the run

    def parse(path, cancel):  # the race made certain: gone between hashing and reading
        if path.name == "gone-before-read.txt":
            path.unlink()
        return parser.parse(path, cancel)

    repo = make_repo(ember_home)
    collection = repo.create_collection("Notes", embedding_model_path="minilm.gguf")
    report = run_to_end(index_collection(repo, collection.id, files, parse, embedding_client.embed,
                                  HostTokenCounter(embedding_client)))
    assert report.indexed == 1
    assert report.failed[str(folder / "gone-before-hash.txt")] == "It cannot be read: it vanished or may not be opened."
    assert "“gone-before-read.txt” cannot be read: No such file or directory" in report.failed[
        str(folder / "gone-before-read.txt")]
    assert repo.integrity_report().ok
    repo.conn.close()


@pytest.mark.skipif(running_as_root() and not can_switch_to_nobody(),
                    reason="root reads any file and setpriv is not here to drop that")
def test_a_file_the_user_may_not_read_fails_alone_with_permission_denied(tmp_path):
    outer = Path(os.environ.get("TMPDIR", "/tmp")) / f"ember-hostile-docs-{os.getpid()}"
    outer.mkdir(mode=0o755)
    try:
        outer.chmod(0o755)
        (outer / "private.txt").write_text(SECRET + "\n")
        (outer / "private.txt").chmod(0o000)
        (outer / "open.txt").write_text(AFTER + "\n")
        (outer / "open.txt").chmod(0o644)
        # the reader child's own request handler, run as the unprivileged user (a process of that user
        # may not start this machine's Python again: it lives under /root), one request per file
        script = ("import json, sys, tempfile\nfrom engine.rag.parse_child import handle\n"
                  "out = tempfile.mkdtemp()\n"
                  "events = [handle({'id': n, 'path': p, 'result': f'{out}/{n}.json'}) for n, p in enumerate(sys.argv[1:])]\n"
                  "print(json.dumps([e.get('reason') or json.load(open(e['result']))['sections'][0]['text'] for e in events]))\n")
        result = subprocess.run(as_nobody(python("-c", script, str(outer / "private.txt"), str(outer / "open.txt"))),
                                cwd=ROOT, env=python_env(outer / "home"), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        private, opened = json.loads(result.stdout.strip().splitlines()[-1])
        assert private == "“private.txt” cannot be read: Permission denied." and opened == AFTER
    finally:
        shutil.rmtree(outer, ignore_errors=True)


# --- remote resources ----------------------------------------------------------------------------------
HOSTILE_PAGE = """<html><head><link rel="stylesheet" href="{base}/style.css"><script src="{base}/app.js"></script>
<meta http-equiv="refresh" content="0; url={base}/refresh"></head>
<body><h1>Harbour report</h1><p>The harbour opened in 1755. <img src="{base}/pixel.gif?html" alt="pixel"></p>
<iframe src="{base}/frame"></iframe><object data="{base}/object"></object><video src="{base}/video"></video>
<a href="{base}/link">a link</a></body></html>"""
HOSTILE_MARKDOWN = """# Harbour notes

The harbour opened in 1755. ![pixel]({base}/pixel.gif?md) and [a link]({base}/link).

<img src="{base}/pixel.gif?inline-html">
"""


def test_html_and_markdown_pointing_at_remote_images_fetch_nothing_when_read_or_shown(
        tmp_path, parser, qapp):
    from PySide6.QtCore import QObject, QUrl, Slot
    from PySide6.QtGui import QDesktopServices, QFont, QImage, QPainter

    from app.models.message_model import DisplayMessage
    from app.views.message_layout import build_document
    from engine.store.chats import Message

    class Opened(QObject):
        def __init__(self):
            super().__init__()
            self.urls: list[str] = []

        @Slot(QUrl)
        def open(self, url):
            self.urls.append(url.toString())

    opened = Opened()
    for scheme in ("http", "https", "file"):
        QDesktopServices.setUrlHandler(scheme, opened, "open")
    try:
        with recording_server() as (base, requested):
            page = tmp_path / "report.html"
            page.write_text(HOSTILE_PAGE.replace("{base}", base))
            notes = tmp_path / "notes.md"
            notes.write_text(HOSTILE_MARKDOWN.replace("{base}", base))
            html_doc, md_doc = parser.parse(page), parser.parse(notes)  # read in the reader child
            assert "The harbour opened in 1755." in html_doc.text and "Harbour report" in html_doc.text
            assert "The harbour opened in 1755." in md_doc.text
            shown = read_source_text(notes, 3, 3, "The harbour opened in 1755.")  # the source viewer's text
            assert shown.found
            reply = Message(1, 1, None, "assistant", HOSTILE_MARKDOWN.replace("{base}", base), "complete", 0)
            layout = build_document(DisplayMessage(reply), 600, QFont())  # a reply as the chat draws it
            image = QImage(600, max(1, int(layout.height)), QImage.Format.Format_ARGB32)
            painter = QPainter(image)
            layout.doc.drawContents(painter)
            painter.end()
            qapp.processEvents()
            assert requested == []  # nothing asked the server for anything
        assert opened.urls == []  # and no link was opened on its own
    finally:
        for scheme in ("http", "https", "file"):
            QDesktopServices.unsetUrlHandler(scheme)


# --- the whole corpus through the indexer ---------------------------------------------------------------
def test_the_hostile_corpus_indexes_the_good_files_fails_each_bad_one_with_its_reason_and_leaks_nothing(
        ember_home, tmp_path, parser, embedding_client):
    folder = tmp_path / "corpus"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    write_pdf(folder / "locked.pdf", ["Secret plans."], password="hunter2")
    write_pdf_bomb(folder / "bomb.pdf", 1024 * MiB)
    write_cyclic_pdf(folder / "cycle.pdf", "Cycle page about ferries.")
    write_lying_docx(folder / "liar.docx", 64 * MiB)
    for attack in XXE_PROLOGS:
        write_docx(folder / f"{attack.replace(' ', '-')}.docx",
                   paragraph("Hello") + f"<w:p><w:r><w:t>{XXE_USES[attack]}</w:t></w:r></w:p>",
                   prolog=XXE_PROLOGS[attack].replace("{secret}", str(secret)))
    write_sparse(folder / "huge.txt", 500 * MiB)
    (folder / "nul.txt").write_bytes(b"text\x00with\x00nuls\n" * 20)
    (folder / "utf16.txt").write_bytes("Notes about lighthouses in UTF-16.\n".encode("utf-16-le"))
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    write_plain_pdf(folder / "good.pdf", "A good PDF about harbours.")
    (folder / "good.md").write_text("# Good\n\nA good note about trams.\n")
    repo = make_repo(ember_home)
    collection = repo.create_collection("Corpus", embedding_model_path="minilm.gguf")
    report = run_to_end(index_collection(repo, collection.id, find_files([folder]), parser.parse, embedding_client.embed,
                                  HostTokenCounter(embedding_client)))
    failed = {Path(path).name: reason for path, reason in report.failed.items()}
    assert set(failed) == {"locked.pdf", "bomb.pdf", "liar.docx", "external-entity.docx", "parameter-entity.docx",
                           "billion-laughs.docx", "huge.txt", "nul.txt"}
    assert all(f"“{name}”" in reason for name, reason in failed.items())  # each reason names its file
    assert report.indexed == 4  # cycle.pdf, utf16.txt, good.pdf, good.md
    statuses = {Path(d.path).name: d.status for d in repo.list_documents(collection.id)}
    assert statuses == {**dict.fromkeys(failed, "failed"), **dict.fromkeys(
        ["cycle.pdf", "utf16.txt", "good.pdf", "good.md"], "indexed")}
    assert repo.integrity_report().ok
    repo.conn.close()
    db = EmberPaths(ember_home).db
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert SECRET.encode() not in db.read_bytes()  # the local file's content never reached the index
    assert b"hahahaha" not in db.read_bytes()
