"""Colours that carry a meaning (an error, a warning, a right answer, a muted note) and the colours of
bars and chart lines, chosen so both themes can be read: text at WCAG AA (4.5:1) against the theme's
window and field backgrounds, graphics at 3:1 (WCAG 1.4.11). Text colours have a light and a dark
shade, picked from the palette at paint time so a theme switch follows; tests/app/test_contrast.py
computes every ratio from the palettes."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

# meaning: (shade on a light theme, shade on a dark theme)
TEXT = {
    "error": ("#b3261e", "#f28b82"),
    "warning": ("#8a5300", "#fdd663"),
    "success": ("#1e7b45", "#81c995"),
    "info": ("#1f5fa8", "#8ab4f8"),
    "muted": ("#5f6368", "#9aa0a6"),
}

# one shade each, readable on light and dark backgrounds alike
GRAPHIC = {
    "system": "#9363ca",
    "documents": "#298a60",
    "history": "#397dbc",
    "reserve": "#707a85",
    "over": "#d34e46",
    "train": "#397dbc",
    "eval": "#b16920",
}


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2's contrast ratio of two colours, 1 to 21."""
    def luminance(color: QColor) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF()) + 0.0722 * channel(color.blueF())
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def text_color(meaning: str, palette: QPalette | None = None) -> QColor:
    """The shade of this meaning for the palette in use (the application's unless given)."""
    light, dark = TEXT[meaning]
    return QColor(dark if is_dark(palette or QApplication.palette()) else light)


def text_css(meaning: str) -> str:
    """The same as a style-sheet colour, for rich text and labels."""
    return text_color(meaning).name()


def graphic_color(part: str) -> QColor:
    return QColor(GRAPHIC[part])
