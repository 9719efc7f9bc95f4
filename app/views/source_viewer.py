"""SourceViewer: what a citation opens. The cited PDF page drawn with the passage's lines highlighted,
or the text file at the cited lines, or, for a format without pages or lines (DOCX, EPUB, HTML), the
passage as indexed with where it is.

The file may be gone or changed since it was indexed; then the viewer says so in plain words and
shows the passage as it was indexed, which is what the reply was given. Drawing and reading happen
in SourceController (the document child, a worker); this dialog only paints what arrives.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRect, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFontDatabase,
    QImage,
    QPainter,
    QPalette,
    QPixmap,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.controllers.source_controller import SourceController
from app.views.widgets import named
from engine.errors import EmberError
from engine.rag.formats import document_kind
from engine.rag.rendered_page import DEFAULT_SCALE, RenderedPage
from engine.rag.source_text import SourceText
from engine.store.chat_documents_repo import MessageSource

LINE_KINDS = ("text", "code", "markdown")  # shown as lines; PDFs as pages; the others as the passage
HIGHLIGHT = QColor(255, 196, 0, 90)  # translucent: the text under it stays readable
HIGHLIGHT_EDGE = QColor(230, 150, 0, 170)
MAX_HIGHLIGHT_LINES = 2_000  # one selection per highlighted line; a chunk has far fewer
PAGE_MARGIN = 12
SHARPER = 1.25  # a page shown this much larger than it was drawn is drawn again at the size shown
MAX_SCALE = 4.0  # pixels around the page in its scroll area


def view_kind(source: MessageSource) -> str:
    """"pdf", "lines" or "passage": how this source can be shown."""
    kind = source.kind or document_kind(source.path)
    if kind == "pdf":
        return "pdf"
    if kind in LINE_KINDS and source.line_start is not None:
        return "lines"
    return "passage"


def span(first: int | None, last: int | None) -> str:
    """ "3" or "3–5" (en dash, as people write ranges)."""
    return f"{first}" if last is None or last == first else f"{first}–{last}"


def where_cited(source: MessageSource) -> str:
    """ "page 3", "pages 3–4", "lines 10–24"; "" for a source without pages or lines."""
    for word, first, last in (("page", source.page_start, source.page_end),
                              ("line", source.line_start, source.line_end)):
        if first is not None:
            plural = "s" if last is not None and last != first else ""
            return f"{word}{plural} {span(first, last)}"
    return ""


# --- a PDF page -----------------------------------------------------------------------------------------
class PageCanvas(QWidget):
    """One drawn page, shown at the width it is given, with the passage's rectangles painted over it.

    The scaled pixmap is made once per page and per width, never per paint.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.highlights: tuple[tuple[int, int, int, int], ...] = ()
        self.factor = 1.0  # shown pixels per image pixel
        self._pixmap: QPixmap | None = None

    def set_page(self, image: QImage, highlights) -> None:
        self.image, self.highlights = image, tuple(highlights)
        self._pixmap = None

    def show_at_width(self, width: int) -> None:
        if self.image is None or self.image.isNull():
            return
        width = max(50, width)
        self.factor = width / self.image.width()
        size = QSize(width, round(self.image.height() * self.factor))
        if self._pixmap is None or self._pixmap.deviceIndependentSize().toSize() != size:
            ratio = self.devicePixelRatioF()
            self._pixmap = QPixmap.fromImage(self.image.scaled(
                size * ratio, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation))
            self._pixmap.setDevicePixelRatio(ratio)
        self.setFixedSize(size)
        self.update()

    def highlight_rects(self) -> list[QRect]:
        """The highlights in this widget's coordinates."""
        f = self.factor
        return [QRect(round(x * f) - 2, round(y * f) - 1, round(w * f) + 4, round(h * f) + 2)
                for x, y, w, h in self.highlights]

    def paintEvent(self, event) -> None:
        if self._pixmap is None:
            return
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._pixmap)
        painter.setPen(HIGHLIGHT_EDGE)
        painter.setBrush(HIGHLIGHT)
        for rect in self.highlight_rects():
            painter.drawRoundedRect(rect, 2, 2)
        painter.end()


class PageArea(QScrollArea):
    """The page's scroll area; says when its width changed, so that a page shown at the width refits."""

    resized = Signal()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.resized.emit()


# --- a text file's lines ------------------------------------------------------------------------------
class NumberedText(QPlainTextEdit):
    """A read-only QPlainTextEdit with the file's line numbers in a margin (a window of a long file
    starts at its own first line's number)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))  # code keeps its columns
        self.first_line = 1
        self.gutter = QWidget(self)
        self.gutter.paintEvent = self._paint_gutter
        self.blockCountChanged.connect(self._fit_gutter)
        self.updateRequest.connect(self._scrolled)
        self._fit_gutter()

    def set_lines(self, lines, first_line: int) -> None:
        self.first_line = first_line
        self.setPlainText("\n".join(lines))
        self._fit_gutter()

    def gutter_width(self) -> int:
        digits = len(str(self.first_line + max(1, self.blockCount()) - 1))
        return 12 + self.fontMetrics().horizontalAdvance("9") * digits

    def _fit_gutter(self, *_) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _scrolled(self, rect, dy) -> None:
        if dy:
            self.gutter.scroll(0, dy)
        else:
            self.gutter.update(0, rect.y(), self.gutter.width(), rect.height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        area = self.contentsRect()
        self.gutter.setGeometry(QRect(area.left(), area.top(), self.gutter_width(), area.height()))

    def _paint_gutter(self, event) -> None:
        painter = QPainter(self.gutter)
        painter.fillRect(event.rect(), self.palette().alternateBase())
        painter.setPen(self.palette().placeholderText().color())
        block = self.firstVisibleBlock()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        height = self.fontMetrics().height()
        while block.isValid() and top <= event.rect().bottom():
            bottom = top + round(self.blockBoundingRect(block).height())
            if block.isVisible() and bottom >= event.rect().top():
                painter.drawText(0, top, self.gutter.width() - 6, height, Qt.AlignmentFlag.AlignRight,
                                 str(self.first_line + block.blockNumber()))
            block, top = block.next(), bottom
        painter.end()

    def highlight_lines(self, first: int, last: int) -> None:
        """Highlight the file's lines first..last and scroll them into the middle of the view."""
        document = self.document()
        selections = []
        for number in range(max(first, self.first_line), min(last, first + MAX_HIGHLIGHT_LINES) + 1):
            block = document.findBlockByNumber(number - self.first_line)
            if not block.isValid():
                break
            selection = QTextEdit.ExtraSelection()  # an empty cursor with a full-width format: the whole line
            selection.cursor = QTextCursor(block)
            selection.format.setBackground(HIGHLIGHT)
            selection.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            selections.append(selection)
        self.setExtraSelections(selections)
        self.scroll_to_line(first)

    def scroll_to_line(self, line: int) -> None:
        block = self.document().findBlockByNumber(max(0, line - self.first_line))
        self.setTextCursor(QTextCursor(block))
        self.centerCursor()


# --- the dialog ---------------------------------------------------------------------------------------
class SourceViewer(QDialog):
    """The source a citation names, opened at its passage. Non-modal; the controller does the work."""

    def __init__(self, controller: SourceController, source: MessageSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourceViewer")
        self.controller = controller
        self.source = source
        self.path = str(Path(source.path).absolute())
        self.name = Path(source.path).name
        self.kind = view_kind(source)
        self.page = source.page_start or 1
        self.page_count: int | None = None
        self.scale = DEFAULT_SCALE  # pixels per PDF point the pages are drawn at; higher when shown larger
        self.rendered: RenderedPage | None = None
        self.text: SourceText | None = None
        self.setWindowTitle(f"{self.name} — source")
        self.resize(900, 860)
        self._build()
        controller.page_ready.connect(self._page_ready)
        controller.text_ready.connect(self._text_ready)
        controller.error.connect(self._failed)
        self._open()

    # --- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.title = named(QLabel(f"<b>{_escape(self.name)}</b>"), "sourceTitle", "The file's name")
        self.title.setToolTip(self.path)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.title.setFont(font)
        cited = where_cited(self.source)
        self.place = named(QLabel(f"Cited: {cited}" if cited else ""), "sourcePlace", "Where the passage is")
        self.place.setVisible(bool(cited))
        headings = " › ".join(self.source.heading_path)
        self.headings = named(QLabel(headings), "sourceHeadings", "The headings above the passage")
        self.headings.setWordWrap(True)
        self.headings.setVisible(bool(headings))
        self.note = named(QLabel(), "sourceNote", "A note about the file")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setFrameShape(QFrame.Shape.StyledPanel)
        self.note.setMargin(8)
        self.note.hide()
        for widget in (self.title, self.place, self.headings, self.note):
            layout.addWidget(widget)

        self.content = QStackedWidget(self)
        self.content.setObjectName("sourceContent")
        self.content.addWidget(self._build_page_panel())
        self.lines_view = named(NumberedText(), "sourceLines", f"The text of {self.name}")
        self.content.addWidget(self.lines_view)
        self.passage_view = named(QPlainTextEdit(self.source.text), "sourcePassage", "The passage as indexed")
        self.passage_view.setReadOnly(True)
        self.content.addWidget(self.passage_view)
        self.indexed = named(QPlainTextEdit(self.source.text), "sourceIndexedText",
                             "The passage as it was indexed, which the reply was given")
        self.indexed.setReadOnly(True)
        self.indexed.hide()
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("sourceSplitter")
        self.splitter.addWidget(self.content)
        self.splitter.addWidget(self.indexed)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        layout.addWidget(self.splitter, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.setObjectName("sourceButtons")
        buttons.button(QDialogButtonBox.StandardButton.Close).setObjectName("sourceCloseButton")
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the source")
        self.system_button = named(
            QPushButton("Open in the system viewer"), "openInSystemViewerButton", "Open in the system viewer",
            "Open the file in the program your system uses for it. It opens at the start of the file, "
            "not at the passage.")
        buttons.addButton(self.system_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.system_button.clicked.connect(self.open_in_system_viewer)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _build_page_panel(self) -> QWidget:
        panel = QWidget(self)
        panel.setObjectName("sourcePagePanel")
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.previous_button = named(QPushButton("‹ Previous"), "previousPageButton", "Previous page",
                                     "Show the page before this one")
        self.next_button = named(QPushButton("Next ›"), "nextPageButton", "Next page", "Show the page after this one")
        self.page_label = named(QLabel(f"Page {self.page}"), "pageNumberLabel", "Which page is shown")
        self.fit_button = named(QPushButton("Fit width"), "fitWidthButton", "Fit the page to the width",
                                "Show the page as wide as the window; off: at its printed size")
        self.fit_button.setCheckable(True)
        self.fit_button.setChecked(True)
        self.previous_button.clicked.connect(lambda: self.go_to_page(self.page - 1))
        self.next_button.clicked.connect(lambda: self.go_to_page(self.page + 1))
        self.fit_button.toggled.connect(lambda _: self._fit_page())
        for button in (self.previous_button, self.next_button, self.fit_button):
            button.setAutoDefault(False)  # Enter does not turn the page
        for button in (self.previous_button, self.next_button):
            button.setEnabled(False)
        bar.addWidget(self.previous_button)
        bar.addWidget(self.next_button)
        bar.addSpacing(12)
        bar.addWidget(self.page_label)
        bar.addStretch(1)
        bar.addWidget(self.fit_button)
        layout.addLayout(bar)
        self.page_area = named(PageArea(), "sourcePageArea", "The page")
        self.page_area.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.page_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)  # no refit loop
        self.page_area.setBackgroundRole(QPalette.ColorRole.Dark)
        self.canvas = named(PageCanvas(), "sourcePageImage", "The cited page with the passage highlighted")
        self.page_area.setWidget(self.canvas)
        self.page_area.resized.connect(self._fit_page)
        layout.addWidget(self.page_area, 1)
        return panel

    # --- what to show -----------------------------------------------------------------------------
    def _open(self) -> None:
        self.content.setCurrentIndex({"pdf": 0, "lines": 1, "passage": 2}[self.kind])
        if not Path(self.path).is_file():
            self._gone()
            return
        if self.kind == "pdf":
            self.controller.render(self.path, self.page, self.source.text, self.scale)
            self.page_label.setText(f"Drawing page {self.page}…")
        elif self.kind == "lines":
            self.controller.read_text(self.path, self.source.line_start, self.source.line_end, self.source.text)
        else:
            kind = (self.source.kind or document_kind(self.source.path) or "this kind of").upper()
            where = f" It is under “{' › '.join(self.source.heading_path)}”." if self.source.heading_path else ""
            self.show_note(f"Ember cannot open a {kind} file at a passage, so this is the passage as it was "
                           f"indexed.{where} The system viewer opens the file at its start.")

    def _gone(self) -> None:
        self.show_note(f"“{self.name}” is not there any more ({self.path}): it was moved or deleted after it was "
                       "indexed. Below is the passage as it was indexed, which is what the reply was given.")
        self.system_button.setEnabled(False)
        self.content.setCurrentIndex(2)  # the passage as indexed, alone

    def show_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _show_indexed(self, shown: bool) -> None:
        self.indexed.setVisible(shown)

    # --- PDF pages --------------------------------------------------------------------------------
    def go_to_page(self, page: int) -> None:
        if self.page_count is None or not 1 <= page <= self.page_count or page == self.page:
            return
        self.page = page
        self.page_label.setText(f"Drawing page {page}…")
        self.previous_button.setEnabled(page > 1)
        self.next_button.setEnabled(page < self.page_count)
        self.controller.render(self.path, page, self.source.text, self.scale)

    def _page_ready(self, rendered: RenderedPage, image: QImage) -> None:
        if rendered.path != self.path or rendered.page != self.page:
            return  # another viewer's page, or one the user already moved past
        new_page = self.rendered is None or self.rendered.page != rendered.page  # not the same one drawn sharper
        first = self.rendered is None
        self.rendered = rendered
        self.page_count = rendered.page_count
        self.page_label.setText(f"Page {rendered.page} of {rendered.page_count}")
        self.previous_button.setEnabled(rendered.page > 1)
        self.next_button.setEnabled(rendered.page < rendered.page_count)
        self.canvas.set_page(image, rendered.highlights)
        self._fit_page()
        cited = self._cited_pages()
        missing = rendered.page in cited and not rendered.found
        self.show_note(f"The passage was not found on page {rendered.page}: the file may have changed since it was "
                       "indexed. Below is the passage as it was indexed, which is what the reply was given."
                       if missing else "")
        self._show_indexed(missing)
        if first:
            self.page_area.setFocus()  # the arrow keys scroll the page
        rects = self.canvas.highlight_rects()
        if rects and new_page:
            top = rects[0]
            self.page_area.ensureVisible(top.center().x(), top.center().y(), 50, self.page_area.height() // 3)
        elif new_page:
            self.page_area.verticalScrollBar().setValue(0)

    def _cited_pages(self) -> range:
        start = self.source.page_start
        if start is None:
            return range(0)
        return range(start, (self.source.page_end or start) + 1)

    def _fit_page(self) -> None:
        if self.canvas.image is None or self.rendered is None:
            return
        if self.fit_button.isChecked():
            width = self.page_area.viewport().width() - 2 * PAGE_MARGIN
        else:  # the printed size: a PDF point is 1/72 inch
            width = round(self.rendered.width / self.rendered.scale * self.logicalDpiX() / 72)
        self.canvas.show_at_width(width)
        needed = width * self.devicePixelRatioF() / (self.rendered.width / self.rendered.scale)
        if needed > self.scale * SHARPER and self.scale < MAX_SCALE:  # shown larger than drawn: draw it again
            self.scale = min(MAX_SCALE, round(needed, 1))
            self.controller.render(self.path, self.page, self.source.text, self.scale)

    # --- text files -------------------------------------------------------------------------------
    def _text_ready(self, text: SourceText) -> None:
        if text.path != self.path:
            return
        self.text = text
        self.lines_view.set_lines(text.lines, text.first_line)
        notes = []
        first, last = text.passage_lines or (text.first_line, text.first_line)
        if not text.found:
            cited = span(self.source.line_start, self.source.line_end)
            notes.append(f"The passage is not at line{'s' if '–' in cited else ''} {cited} any more, nor anywhere "
                         "else in the file: it changed since it was indexed. Below is the passage as it was "
                         "indexed, which is what the reply was given.")
        elif text.moved:
            notes.append(f"The file changed since it was indexed: the passage is now at lines {span(first, last)}.")
        if not text.whole:
            notes.append(f"The file is long: lines {text.first_line}–{text.first_line + len(text.lines) - 1} of "
                         f"{text.total_lines} are shown. The system viewer shows all of it.")
        self.show_note(" ".join(notes))
        self._show_indexed(not text.found)
        if text.found:
            self.lines_view.highlight_lines(first, last)
        else:
            self.lines_view.scroll_to_line(first)
        QTimer.singleShot(0, lambda: self.lines_view.centerCursor())  # once the view has its size

    # --- both -------------------------------------------------------------------------------------
    def _failed(self, error: EmberError, path: str) -> None:
        if path != self.path:
            return
        self.show_note(f"{error.message} {error.hint}".strip() + " Below is the passage as it was indexed.")
        if self.kind == "pdf":
            self.page_label.setText(f"Page {self.page} could not be drawn")
        self._show_indexed(True)

    def open_in_system_viewer(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(self.path))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def open_source(controller: SourceController, source: MessageSource, parent: QWidget | None = None) -> SourceViewer:
    """Open a non-modal viewer on `source` (deleted when closed)."""
    viewer = SourceViewer(controller, source, parent)
    viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    viewer.show()
    return viewer
