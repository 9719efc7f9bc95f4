"""Light or dark, as the system says: the Fusion style with the platform's palette, or a dark one
when the system asks for dark and the platform gave a light palette. Follows changes while running.
EMBER_THEME=light|dark forces one (for screenshots and for people whose desktop reports nothing)."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from app.views.colors import contrast_ratio, is_dark

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


_follow = {}  # the app's platform palette and its chosen theme, kept for apply_choice


READABLE_HIGHLIGHT = "#2a6fb0"  # white on it: 5.3:1


def light_palette(base: QPalette) -> QPalette:
    """A light palette as given, except a selection colour too pale for white text (Fusion's own
    #308cc6 gives 3.7:1, under WCAG AA's 4.5:1) is replaced by a darker blue."""
    palette = QPalette(base)
    roles = QPalette.ColorRole
    if contrast_ratio(palette.color(roles.HighlightedText), palette.color(roles.Highlight)) < 4.5:
        palette.setColor(roles.Highlight, QColor(READABLE_HIGHLIGHT))
        palette.setColor(roles.HighlightedText, QColor("#ffffff"))
    return palette


def apply_theme(app: QApplication, theme: str = "system", font_size: int = 0) -> None:
    """Fusion with the light or dark palette (the system's unless `theme` or EMBER_THEME says), and
    the font size chosen on the Settings page (0: the system's)."""
    app.setStyle("Fusion")
    platform_palette = QPalette(app.palette())
    hints = app.styleHints()
    _follow.update(app=app, platform_palette=platform_palette, font=app.font(), theme=theme)
    apply_font_size(app, font_size)

    def update(*_) -> None:
        forced = os.environ.get(THEME_ENV, "").lower() or (_follow["theme"] if _follow["theme"] != "system" else "")
        wants_dark = forced == "dark" or (forced != "light" and hints.colorScheme() == Qt.ColorScheme.Dark)
        if wants_dark and not is_dark(platform_palette):
            app.setPalette(dark_palette())
        elif forced == "light" and is_dark(platform_palette):
            app.setPalette(light_palette(app.style().standardPalette()))
        elif is_dark(platform_palette):
            app.setPalette(platform_palette)
        else:
            app.setPalette(light_palette(platform_palette))

    _follow["update"] = update
    hints.colorSchemeChanged.connect(update)
    update()


def apply_choice(theme: str, font_size: int) -> None:
    """The Settings page changed the theme or the font size: apply it now, no restart."""
    if "update" not in _follow:  # the app was started without apply_theme (a test's window)
        apply_theme(QApplication.instance(), theme, font_size)
        return
    _follow["theme"] = theme
    _follow["update"]()
    apply_font_size(_follow["app"], font_size)


def apply_font_size(app: QApplication, points: int) -> None:
    font = QFont(_follow.get("font", app.font()))
    if points:
        font.setPointSize(points)
    app.setFont(font)
