"""Draws a table cell as a progress bar with its words on it (the Downloads tab's Progress column).

The model gives the fraction done (0..1) under ProgressRole and the words under DisplayRole; a row
without a fraction is drawn as plain text. The bar is a soft band behind the words, in the palette's
colours, so they stay readable in light and dark themes and on a selected row.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate

from app.models.rows_table_model import ProgressRole


class ProgressDelegate(QStyledItemDelegate):
    def paint(self, painter, option, index) -> None:
        fraction = index.data(ProgressRole)
        if fraction is None:
            super().paint(painter, option, index)
            return
        fraction = max(0.0, min(1.0, float(fraction)))
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        ink = option.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        fill = QColor(ink if selected else option.palette.color(QPalette.ColorRole.Highlight))
        groove = QColor(ink)
        groove.setAlpha(30)
        fill.setAlpha(80 if selected else 110)
        painter.save()
        painter.setRenderHint(painter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        band = QRectF(option.rect.adjusted(3, 4, -3, -4))
        painter.setBrush(groove)
        painter.drawRoundedRect(band, 4, 4)
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(band.x(), band.y(), band.width() * fraction, band.height()), 4, 4)
        painter.setPen(ink)
        painter.drawText(band.adjusted(8, 0, -8, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         index.data() or "")
        painter.restore()
