"""A live chart of the training loss (every step) and the held-out loss (at each evaluation).

Painted with QPainter: two polylines over the steps, a faint grid with the loss at its lines, and a
legend. A point is added per step, and only the widget repaints (a few hundred points cost nothing).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.views.colors import graphic_color

TRAIN_COLOR = graphic_color("train")
EVAL_COLOR = graphic_color("eval")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 48, 12, 22, 24


class LossChart(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("lossChart")
        self.setAccessibleName("Training loss chart")
        self.setMinimumHeight(180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.train: list[tuple[int, float]] = []
        self.eval: list[tuple[int, float]] = []
        self.total_steps = 0

    def clear(self, total_steps: int = 0) -> None:
        self.train, self.eval, self.total_steps = [], [], total_steps
        self._describe()
        self.update()

    def add_train(self, step: int, loss: float, total_steps: int | None = None) -> None:
        self.train = [p for p in self.train if p[0] < step] + [(step, loss)]  # a resumed run redraws from there
        if total_steps:
            self.total_steps = total_steps
        self._describe()
        self.update()

    def add_eval(self, step: int, loss: float) -> None:
        self.eval = [p for p in self.eval if p[0] < step] + [(step, loss)]
        self._describe()
        self.update()

    def _describe(self) -> None:
        """What a screen reader says: the first and latest losses in words."""
        parts = []
        if self.train:
            parts.append(f"training loss {self.train[0][1]:.3f} at step {self.train[0][0]}, "
                         f"{self.train[-1][1]:.3f} at step {self.train[-1][0]}")
        if self.eval:
            parts.append(f"held-out loss {self.eval[-1][1]:.3f} at step {self.eval[-1][0]}")
        self.setAccessibleDescription("; ".join(parts) or "no steps yet")

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        plot = QRectF(MARGIN_LEFT, MARGIN_TOP, max(1, self.width() - MARGIN_LEFT - MARGIN_RIGHT),
                      max(1, self.height() - MARGIN_TOP - MARGIN_BOTTOM))
        text = palette.color(QPalette.ColorRole.Text)
        values = [loss for _, loss in self.train + self.eval]
        if not values:
            painter.setPen(text)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "The loss appears here once training starts.")
            return
        low, high = min(values), max(values)
        if high - low < 1e-6:
            low, high = low - 0.5, high + 0.5
        pad = (high - low) * 0.08
        low, high = max(0.0, low - pad), high + pad
        last_step = max(self.total_steps, max(step for step, _ in self.train + self.eval), 1)

        def point(step: int, loss: float) -> QPointF:
            return QPointF(plot.left() + plot.width() * step / last_step,
                           plot.bottom() - plot.height() * (loss - low) / (high - low))

        grid = QColor(text)
        grid.setAlpha(40)
        painter.setPen(QPen(grid, 1))
        for i in range(5):
            y = plot.top() + plot.height() * i / 4
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.save()
            painter.setPen(text)
            painter.drawText(QRectF(0, y - 8, MARGIN_LEFT - 6, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{high - (high - low) * i / 4:.2f}")
            painter.restore()
        painter.setPen(text)
        painter.drawText(QRectF(plot.left(), plot.bottom() + 4, plot.width(), 18), Qt.AlignmentFlag.AlignRight,
                         f"step {last_step}")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 4, plot.width(), 18), Qt.AlignmentFlag.AlignLeft, "0")
        for points, color in ((self.train, TRAIN_COLOR), (self.eval, EVAL_COLOR)):
            if not points:
                continue
            painter.setPen(QPen(color, 2))
            painter.drawPolyline(QPolygonF([point(step, loss) for step, loss in points]))
            painter.setBrush(color)
            for step, loss in points[-1:] if color == TRAIN_COLOR else points:
                painter.drawEllipse(point(step, loss), 3, 3)
        legend = [("training loss", TRAIN_COLOR)] + ([("held-out loss", EVAL_COLOR)] if self.eval else [])
        x = plot.left() + 4
        for label, color in legend:
            painter.setPen(QPen(color, 3))
            painter.drawLine(QPointF(x, 10), QPointF(x + 18, 10))
            painter.setPen(text)
            painter.drawText(QPointF(x + 22, 14), label)
            x += 40 + painter.fontMetrics().horizontalAdvance(label)
