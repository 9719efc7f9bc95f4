"""Light or dark, as the system says: the Fusion style with the platform's palette, or a dark one
when the system asks for dark and the platform gave a light palette. Follows changes while running.
EMBER_THEME=light|dark forces one (for screenshots and for people whose desktop reports nothing)."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEME_ENV = "EMBER_THEME"


def dark_palette() -> QPalette:
    p = QPalette()
    roles = QPalette.ColorRole
    colors = {
        roles.Window: "#202124", roles.WindowText: "#e8eaed", roles.Base: "#17181a", roles.AlternateBase: "#2a2b2e",
        roles.ToolTipBase: "#2a2b2e", roles.ToolTipText: "#e8eaed", roles.Text: "#e8eaed", roles.Button: "#2d2e31",
        roles.ButtonText: "#e8eaed", roles.BrightText: "#ff6b6b", roles.Link: "#8ab4f8", roles.Highlight: "#3c6fd1",
        roles.HighlightedText: "#ffffff", roles.PlaceholderText: "#9aa0a6", roles.Mid: "#3c4043",
        roles.Dark: "#111214", roles.Light: "#4a4c50", roles.Midlight: "#35363a", roles.Shadow: "#000000",
    }
    for role, color in colors.items():
        p.setColor(role, QColor(color))
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6f7378"))
    return p


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    platform_palette = QPalette(app.palette())
    forced = os.environ.get(THEME_ENV, "").lower()
    hints = app.styleHints()

    def update(*_) -> None:
        wants_dark = forced == "dark" or (forced != "light" and hints.colorScheme() == Qt.ColorScheme.Dark)
        if wants_dark and not is_dark(platform_palette):
            app.setPalette(dark_palette())
        elif forced == "light" and is_dark(platform_palette):
            app.setPalette(app.style().standardPalette())
        else:
            app.setPalette(platform_palette)

    hints.colorSchemeChanged.connect(update)
    update()
