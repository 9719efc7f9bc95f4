"""The source viewer a citation opens, with real widgets and the real document child: the cited PDF page
drawn with the passage highlighted and paging through the document; a text file at the cited lines;
a DOCX passage with where it is; a file that is gone or changed said plainly, the indexed text shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QPushButton

from app.controllers.source_controller import SourceController
from app.views.source_viewer import open_source
from app.workers import WorkerRunner
from engine.store.chat_documents_repo import MessageSource

pytestmark = pytest.mark.timeout(60)

SENTENCE = ("The suspension bridge over the gorge was finished in 1931 by the valley's miners, and it still "
            "carries the old post road across the river today.")
WAIT_MS = 20_000  # the first page starts the document child


def write_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in ("Page one is about the railway timetable.", f"Page two opens here.\n\n{SENTENCE}",
                 "Page three lists the lighthouses of the coast."):
        pdf.add_page()
        pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def source(path: Path, kind: str, text: str, *, pages=(None, None), lines=(None, None), headings=()) -> MessageSource:
    return MessageSource(rank=1, number=1, chunk_id=None, collection_id=None, path=str(path), kind=kind,
                         page_start=pages[0], page_end=pages[1], line_start=lines[0], line_end=lines[1],
                         heading_path=tuple(headings), text=text)


@pytest.fixture
def controller(tmp_path):
    runner = WorkerRunner()
    controller = SourceController(runner, tmp_path / "logs")
    yield controller
    controller.close()
    assert runner.shutdown(10)


@pytest.fixture
def viewers(qtbot):
    def show(controller, cited):
        viewer = open_source(controller, cited)
        qtbot.addWidget(viewer)  # closed (and so deleted) at the end of the test
        qtbot.waitExposed(viewer)
        return viewer

    return show


def note(viewer) -> str:
    label = viewer.findChild(QLabel, "sourceNote")
    return label.text() if label.isVisible() else ""


def button(viewer, name: str) -> QPushButton:
    return viewer.findChild(QPushButton, name)


def test_a_pdf_source_opens_at_its_page_with_the_passage_highlighted_and_pages_through(qtbot, tmp_path, controller,
                                                                                      viewers):
    path = write_pdf(tmp_path / "valley.pdf")
    viewer = viewers(controller, source(path, "pdf", SENTENCE, pages=(2, 2)))
    qtbot.waitUntil(lambda: viewer.rendered is not None, timeout=WAIT_MS)
    page = viewer.findChild(QLabel, "pageNumberLabel")
    assert page.text() == "Page 2 of 3" and note(viewer) == ""
    canvas = viewer.canvas
    assert canvas.isVisible() and not canvas.image.isNull()
    assert canvas.image.width() == viewer.rendered.width and viewer.rendered.highlights
    assert abs(canvas.width() - (viewer.page_area.viewport().width() - 24)) <= 1  # fitted to the width
    shown = canvas.grab().toImage()
    rect = canvas.highlight_rects()[0]
    marked = shown.pixelColor(QPoint(rect.center().x(), rect.top() + 3))  # inside the highlight, above the text
    plain = shown.pixelColor(QPoint(rect.center().x(), rect.bottom() + 40))  # the page's white below it
    assert marked.blue() < plain.blue() - 40 and marked.red() > 200  # the translucent yellow is painted
    assert viewer.page_area.viewport().rect().intersects(rect.translated(canvas.pos()))  # scrolled into view

    viewer.resize(1700, viewer.height())  # shown wider than drawn: drawn again, sharper
    qtbot.waitUntil(lambda: viewer.rendered.scale > 2.0, timeout=WAIT_MS)
    assert viewer.rendered.page == 2 and viewer.rendered.highlights
    assert abs(canvas.image.width() - viewer.rendered.width) <= 1 and canvas.image.width() > 1300

    button(viewer, "nextPageButton").click()
    qtbot.waitUntil(lambda: viewer.rendered.page == 3, timeout=WAIT_MS)
    assert page.text() == "Page 3 of 3" and viewer.rendered.highlights == ()
    assert not button(viewer, "nextPageButton").isEnabled() and note(viewer) == ""  # page 3 was not cited
    button(viewer, "previousPageButton").click()
    button(viewer, "previousPageButton").click()  # asked while page 2 is drawn: only page 1 follows it
    qtbot.waitUntil(lambda: viewer.rendered.page == 1, timeout=WAIT_MS)
    assert page.text() == "Page 1 of 3" and not button(viewer, "previousPageButton").isEnabled()
    assert controller._parser.starts == 1  # one document child for all the pages


def test_a_pdf_that_changed_says_the_passage_is_not_on_its_page_and_shows_the_indexed_text(qtbot, tmp_path,
                                                                                         controller, viewers):
    path = write_pdf(tmp_path / "valley.pdf")
    viewer = viewers(controller, source(path, "pdf", "Text that was on page three before the file was edited.",
                                        pages=(3, 3)))
    qtbot.waitUntil(lambda: viewer.rendered is not None, timeout=WAIT_MS)
    assert "not found on page 3" in note(viewer) and "may have changed" in note(viewer)
    indexed = viewer.findChild(QPlainTextEdit, "sourceIndexedText")
    assert indexed.isVisible() and indexed.toPlainText().startswith("Text that was on page three")

    gone_page = viewers(controller, source(path, "pdf", SENTENCE, pages=(7, 7)))
    qtbot.waitUntil(lambda: note(gone_page) != "", timeout=WAIT_MS)
    assert "has 3 pages; there is no page 7" in note(gone_page)


def test_a_text_source_opens_at_its_lines_with_them_highlighted(qtbot, tmp_path, controller, viewers):
    path = tmp_path / "notes.md"
    lines = [f"Line {n} of the notes." for n in range(1, 121)]
    lines[79:82] = ["The cellar door sticks in wet weather;", "lift it slightly while turning the key,",
                    "then push with the shoulder."]
    path.write_text("\n".join(lines), encoding="utf-8")
    viewer = viewers(controller, source(path, "markdown", "\n".join(lines[79:82]), lines=(80, 82),
                                        headings=("House", "Cellar")))
    qtbot.waitUntil(lambda: viewer.text is not None, timeout=WAIT_MS)
    view = viewer.lines_view
    assert view.isVisible() and view.isReadOnly() and view.blockCount() == 120
    assert [s.cursor.blockNumber() + 1 for s in view.extraSelections()] == [80, 81, 82]  # whole lines
    qtbot.waitUntil(lambda: view.firstVisibleBlock().blockNumber() > 40)  # scrolled down to it
    assert view.viewport().rect().contains(view.cursorRect().center())  # line 80 is in view
    assert viewer.findChild(QLabel, "sourceHeadings").text() == "House › Cellar"
    assert viewer.findChild(QLabel, "sourcePlace").text() == "Cited: lines 80–82" and note(viewer) == ""


def test_a_deleted_file_says_so_and_shows_the_indexed_text(qtbot, tmp_path, controller, viewers):
    path = write_pdf(tmp_path / "removed.pdf")
    path.unlink()
    viewer = viewers(controller, source(path, "pdf", SENTENCE, pages=(2, 2)))
    assert "“removed.pdf” is not there any more" in note(viewer) and "moved or deleted" in note(viewer)
    passage = viewer.findChild(QPlainTextEdit, "sourcePassage")
    assert passage.isVisible() and passage.toPlainText() == SENTENCE
    assert not button(viewer, "openInSystemViewerButton").isEnabled()
    assert controller._parser is None  # nothing was started for a file that is not there


def test_a_docx_passage_is_shown_with_where_it_is_and_every_control_is_named(qtbot, tmp_path, controller,
                                                                            viewers):
    path = tmp_path / "guide.docx"
    path.write_bytes(b"PK")  # only its existence matters: DOCX is shown as the indexed passage
    viewer = viewers(controller, source(path, "docx", "Unplug the kettle before descaling it.",
                                        headings=("Guide", "Kettle")))
    assert viewer.findChild(QPlainTextEdit, "sourcePassage").toPlainText() == "Unplug the kettle before descaling it."
    assert "DOCX" in note(viewer) and "“Guide › Kettle”" in note(viewer) and "at its start" in note(viewer)
    system = button(viewer, "openInSystemViewerButton")
    assert system.isEnabled() and "opens at the start" in system.toolTip()
    for kind in (QPushButton, QPlainTextEdit, QLabel):
        for widget in viewer.findChildren(kind):
            assert widget.objectName() and widget.accessibleName(), widget


def test_closing_the_controller_while_a_page_is_drawn_stops_the_child_and_drops_the_page(qtbot, tmp_path):
    path = write_pdf(tmp_path / "valley.pdf")
    runner = WorkerRunner()
    controller = SourceController(runner, tmp_path / "logs")
    arrived = []
    controller.page_ready.connect(lambda page, image: arrived.append(page))
    controller.render(str(path), 1, "")
    controller.render(str(path), 2, "")  # waits for page 1
    controller.close()
    assert runner.shutdown(10)
    qtbot.wait(50)
    assert arrived == [] and controller._parser is None
    controller.render(str(path), 3, "")  # after close: nothing starts
    assert not controller.busy


def test_the_viewer_never_loads_pdfium_into_the_app():
    import subprocess
    import sys

    code = ("import sys, app.views.source_viewer, app.controllers.source_controller;"
            "print('pypdfium2' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "False", done.stderr
