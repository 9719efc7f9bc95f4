"""The context budget bar: how the model's context is spent (system prompt, documents, chat, reply reserve, free)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QWidget

from app.views.colors import graphic_color
from engine.chat.budget import ContextBudget

COLORS = {part: graphic_color(part) for part in ("system", "documents", "history", "reserve", "over")}


def describe_budget(budget: ContextBudget | None) -> str:
    if budget is None:
        return "Context: load a model to see how it is spent."
    documents = f"documents {budget.documents_tokens:,}, " if budget.documents_tokens else ""
    text = (f"Context {budget.needed:,} of {budget.context_length:,} tokens: system {budget.system_tokens:,}, "
            f"{documents}chat {budget.history_tokens:,}, reply {budget.reserve_tokens:,}")
    if budget.dropped_messages:
        text += f" ({budget.dropped_messages} oldest messages left out, as you chose)"
    if budget.overflows:
        text += f". Over by {-budget.free:,}: you will be asked before anything is left out"
    else:
        text += f", free {budget.free:,}"
    return text


class BudgetBar(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.budget: ContextBudget | None = None
        self.setObjectName("contextBudgetBar")
        self.setAccessibleName("Context budget")
        self.setFixedHeight(8)

    def sizeHint(self) -> QSize:
        return QSize(200, 8)

    def set_budget(self, budget: ContextBudget | None) -> None:
        self.budget = budget
        self.setToolTip(describe_budget(budget))
        self.setAccessibleDescription(describe_budget(budget))
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0, 1, 0, -1)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette().color(QPalette.ColorRole.Mid))
        painter.drawRoundedRect(rect, 3, 3)
        b = self.budget
        if not b or b.context_length <= 0:
            return
        painter.setClipRect(rect)
        x = rect.left()
        total = max(b.context_length, b.needed)
        for part, tokens in (("system", b.system_tokens), ("documents", b.documents_tokens),
                             ("history", b.history_tokens), ("reserve", b.reserve_tokens)):
            width = rect.width() * tokens / total
            painter.setBrush(COLORS["over" if b.overflows and part == "history" else part])
            painter.drawRect(QRectF(x, rect.top(), width, rect.height()))
            x += width
