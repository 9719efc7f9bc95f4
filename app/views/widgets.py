"""Small helpers so every interactive widget gets an objectName and an accessible name."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget


def named(widget: QWidget, object_name: str, accessible: str, tooltip: str | None = None) -> QWidget:
    widget.setObjectName(object_name)
    widget.setAccessibleName(accessible)
    if tooltip:
        widget.setToolTip(tooltip)
    return widget
