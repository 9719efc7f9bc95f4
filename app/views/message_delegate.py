"""Paints one message: who wrote it, its text (Markdown for replies, code blocks with a Copy button),
its status and stats, and ◀ 2/3 ▶ to switch between versions. Clicks on those buttons become signals;
keyboard users have the same actions in the bar under the conversation."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAbstractTextDocumentLayout, QColor, QPainter, QPalette
from PySide6.QtWidgets import QAbstractItemView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.models.message_model import DisplayMessage, MessageRole
from app.views import message_layout as ml
from app.views.colors import text_color


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(int(a.red() + (b.red() - a.red()) * t), int(a.green() + (b.green() - a.green()) * t),
                  int(a.blue() + (b.blue() - a.blue()) * t))


def bubble_colors(palette: QPalette, role: str) -> tuple[QColor, QColor]:
    """A message's bubble fill and its muted text (the header and footer), from the palette: the user's
    bubble tinted with the selection colour, a reply's barely off the background. The contrast test
    checks the text on them in both themes."""
    text = palette.color(QPalette.ColorRole.Text)
    base = palette.color(QPalette.ColorRole.Base)
    accent = palette.color(QPalette.ColorRole.Highlight)
    fill = _mix(base, accent, 0.10) if role == "user" else _mix(base, text, 0.04)
    return fill, _mix(text, base, 0.35)


class MessageDelegate(QStyledItemDelegate):
    copy_code = Signal(str)
    branch_step = Signal(int, int)  # message id, -1 or +1
    citation_clicked = Signal(int, int)  # message id, the citation's [n]

    def __init__(self, view: QAbstractItemView) -> None:
        super().__init__(view)
        self.view = view
        self._layouts: dict[int, tuple[tuple, ml.DocLayout]] = {}

    # --- layout ---------------------------------------------------------------------------------
    def _row_width(self) -> float:
        return max(200.0, float(self.view.viewport().width()))

    def layout_for(self, item: DisplayMessage, option: QStyleOptionViewItem) -> ml.DocLayout:
        width = ml.doc_width(self._row_width())
        key = (len(item.message.content), item.message.status, item.message.role, len(item.sources), int(width),
               option.font.key())
        cached = self._layouts.get(item.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        layout = ml.build_document(item, width, option.font)
        self._layouts[item.id] = (key, layout)
        return layout

    def forget(self) -> None:
        """Drop cached documents (another chat is shown)."""
        self._layouts.clear()

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:
        item: DisplayMessage = index.data(MessageRole)
        if item is None:
            return QSize(0, 0)
        layout = self.layout_for(item, option)
        return QSize(int(self._row_width()), ml.row_height(item, layout, option.fontMetrics))

    def _geometry(self, item: DisplayMessage, option: QStyleOptionViewItem) -> ml.Geometry:
        row = QRectF(option.rect)
        row.setWidth(self._row_width())
        return ml.geometry(item, self.layout_for(item, option), row, option.fontMetrics)

    # --- painting -------------------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        item: DisplayMessage = index.data(MessageRole)
        if item is None:
            return
        layout = self.layout_for(item, option)
        g = self._geometry(item, option)
        pal = option.palette
        text = pal.color(QPalette.ColorRole.Text)
        base = pal.color(QPalette.ColorRole.Base)
        accent = pal.color(QPalette.ColorRole.Highlight)
        fill, muted = bubble_colors(pal, item.role)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setPen(accent if selected else _mix(base, text, 0.12))
        painter.setBrush(fill)
        painter.drawRoundedRect(g.bubble, 8, 8)

        bold = painter.font()
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text)
        who, _, model = ml.header_text(item).partition(" · ")
        painter.drawText(g.header, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, who)
        x = g.header.left() + painter.fontMetrics().horizontalAdvance(who) + 10
        painter.setFont(option.font)
        if model:
            painter.setPen(muted)
            painter.drawText(QRectF(x, g.header.top(), g.header.right() - x, g.header.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             painter.fontMetrics().elidedText(model, Qt.TextElideMode.ElideMiddle, int(g.header.right() - x)))

        code_fill = _mix(base, text, 0.09)
        for block in layout.code_blocks:
            r = block.rect.translated(g.doc_origin_x, g.doc_origin_y)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(code_fill)
            painter.drawRoundedRect(r, 5, 5)
        painter.save()
        painter.translate(g.doc_origin_x, g.doc_origin_y)
        context = QAbstractTextDocumentLayout.PaintContext()
        context.palette = QPalette(pal)
        context.palette.setColor(QPalette.ColorRole.Text, text)
        layout.doc.documentLayout().draw(painter, context)
        painter.restore()
        for rect, _code in g.copy_chips:
            self._chip(painter, rect, "Copy", base, text)

        footer = ml.footer_text(item)
        if footer:
            status = item.message.status
            painter.setPen(text_color("error") if status in ("error", "interrupted") else text_color("warning")
                           if status in ("cancelled", "streaming") else muted)
            width = (g.prev_chip.left() - g.footer.left() - 8) if g.prev_chip else g.footer.width()
            painter.drawText(QRectF(g.footer.left(), g.footer.top(), width, g.footer.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             painter.fontMetrics().elidedText(footer, Qt.TextElideMode.ElideRight, int(width)))
        if g.prev_chip is not None:
            self._chip(painter, g.prev_chip, "◀", base, text)
            painter.setPen(text)
            painter.drawText(g.branch_label, Qt.AlignmentFlag.AlignCenter, ml.branch_text(item))
            self._chip(painter, g.next_chip, "▶", base, text)
        painter.restore()

    @staticmethod
    def _chip(painter: QPainter, rect: QRectF, label: str, base: QColor, text: QColor) -> None:
        painter.setPen(_mix(base, text, 0.25))
        painter.setBrush(_mix(base, text, 0.03))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(text)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)

    # --- clicks ---------------------------------------------------------------------------------
    def hit(self, item: DisplayMessage, option: QStyleOptionViewItem, pos: QPointF):
        """What is under `pos`: ("copy", code) / ("branch", -1 or +1) / ("cite", n) / None."""
        g = self._geometry(item, option)
        for rect, code in g.copy_chips:
            if rect.contains(pos):
                return "copy", code
        if item.sources:
            n = ml.citation_at(self.layout_for(item, option), QPointF(pos.x() - g.doc_origin_x, pos.y() - g.doc_origin_y))
            if n is not None:
                return "cite", n
        if g.prev_chip is not None and g.prev_chip.contains(pos):
            return "branch", -1
        if g.next_chip is not None and g.next_chip.contains(pos):
            return "branch", +1
        return None

    def editorEvent(self, event, model, option, index) -> bool:
        if event.type() not in (QEvent.Type.MouseButtonRelease, QEvent.Type.MouseMove):
            return False
        item: DisplayMessage = index.data(MessageRole)
        if item is None:
            return False
        target = self.hit(item, option, event.position())
        if event.type() == QEvent.Type.MouseMove:
            shape = Qt.CursorShape.PointingHandCursor if target else Qt.CursorShape.ArrowCursor
            self.view.viewport().setCursor(shape)
            return False
        if target is None or event.button() != Qt.MouseButton.LeftButton:
            return False
        kind, value = target
        if kind == "copy":
            self.copy_code.emit(value)
        elif kind == "cite":
            self.citation_clicked.emit(item.id, value)
        else:
            self.branch_step.emit(item.id, value)
        return True
