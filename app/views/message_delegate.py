"""Paints one message: who, the Markdown text, the reply's stats and status, and ◀ i/n ▶ for branches.

Rendered documents are cached by (id, text length, width), so scrolling a long chat re-lays-out nothing.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QColor, QPalette, QTextDocument
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.models.message_model import DisplayMessage, MessageRole

PAD = 10
CACHE_LIMIT = 3000


def stats_line(item: DisplayMessage) -> str:
    m = item.message
    parts = []
    if m.status != "complete":
        parts.append({"streaming": "● writing…", "cancelled": "stopped", "interrupted": "interrupted (Ember closed)",
                      "error": f"error: {m.error or ''}"}.get(m.status, m.status))
    s = m.stats
    if s is not None and m.role == "assistant":
        if s.ttft_s is not None:
            parts.append(f"{s.ttft_s:.2f} s to first token")
        if s.tokens_per_s:
            parts.append(f"{s.tokens_per_s:.1f} tok/s")
        parts.append(f"{s.completion_tokens} tokens")
    if m.role == "assistant" and m.provenance.model_name:
        parts.append(m.provenance.model_name)
    if item.sibling_count > 1:
        parts.append(f"◀ {item.sibling_index}/{item.sibling_count} ▶")
    return "  ·  ".join(parts)


class MessageDelegate(QStyledItemDelegate):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._docs: dict[tuple, QTextDocument] = {}

    def _document(self, item: DisplayMessage, width: int, option: QStyleOptionViewItem) -> QTextDocument:
        key = (item.id, len(item.message.content), item.message.status, width)
        doc = self._docs.get(key)
        if doc is None:
            if len(self._docs) > CACHE_LIMIT:
                self._docs.clear()
            doc = QTextDocument()
            doc.setDefaultFont(option.font)
            doc.setDocumentMargin(0)
            doc.setMarkdown(item.message.content or ("…" if item.message.status == "streaming" else ""))
            doc.setTextWidth(max(50, width))
            self._docs[key] = doc
        return doc

    def _text_width(self, option: QStyleOptionViewItem) -> int:
        return option.rect.width() - 4 * PAD

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:
        item: DisplayMessage = index.data(MessageRole)
        if item is None:
            return QSize(0, 0)
        width = self._text_width(option) if option.rect.width() > 0 else 600
        doc = self._document(item, width, option)
        line = option.fontMetrics.height()
        extra = line if stats_line(item) else 0
        return QSize(width + 4 * PAD, int(doc.size().height()) + line + extra + 3 * PAD)

    def paint(self, painter, option: QStyleOptionViewItem, index) -> None:
        item: DisplayMessage = index.data(MessageRole)
        if item is None:
            return
        painter.save()
        palette = option.palette
        rect = option.rect.adjusted(PAD, PAD // 2, -PAD, -PAD // 2)
        is_user = item.message.role == "user"
        base = palette.color(QPalette.ColorRole.AlternateBase if is_user else QPalette.ColorRole.Base)
        if option.state & QStyle.StateFlag.State_Selected:
            base = palette.color(QPalette.ColorRole.Highlight).lighter(170) if palette.color(
                QPalette.ColorRole.Window).lightness() > 128 else palette.color(QPalette.ColorRole.Highlight).darker(150)
        painter.setRenderHint(painter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(base)
        painter.drawRoundedRect(QRectF(rect), 8, 8)
        line = option.fontMetrics.height()
        text_color = palette.color(QPalette.ColorRole.Text)
        header = "You" if is_user else "Assistant"
        bold = painter.font()
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text_color)
        painter.drawText(rect.adjusted(PAD, PAD // 2, -PAD, 0), Qt.AlignmentFlag.AlignLeft, header)
        painter.setFont(option.font)
        doc = self._document(item, self._text_width(option), option)
        painter.translate(rect.left() + PAD, rect.top() + PAD // 2 + line)
        context = QAbstractTextDocumentLayout.PaintContext()
        context.palette.setColor(QPalette.ColorRole.Text, text_color)
        doc.documentLayout().draw(painter, context)
        painter.translate(0, doc.size().height())
        stats = stats_line(item)
        if stats:
            muted = QColor(text_color)
            muted.setAlpha(150)
            if item.message.status in ("error", "interrupted"):
                muted = QColor("#c0392b")
            painter.setPen(muted)
            painter.drawText(0, 0, rect.width() - 2 * PAD, line + PAD // 2, Qt.AlignmentFlag.AlignVCenter, stats)
        painter.restore()
