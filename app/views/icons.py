"""Ember's icons: line drawings in one style (resources/icons/*.svg, 24×24, drawn in `currentColor`),
read through importlib.resources so they are found in a source checkout and in the bundle alike, and
painted in the palette's text colour so they follow the light or dark theme."""

from __future__ import annotations

from importlib import resources

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

ICON_SIZES = (16, 24, 32, 48)
APP_ICON = "ember"  # the window's and the desktop entry's icon (packaging/ writes it out for the desktop)
APP_ICON_COLOR = "#e8590c"  # an ember's orange, readable on light and dark panels alike
APP_ICON_SIZES = (*ICON_SIZES, 64, 128, 256)


def icon_svg(name: str) -> str:
    """The SVG text of the icon `name` (raises FileNotFoundError for an icon that does not exist)."""
    return (resources.files("resources") / "icons" / f"{name}.svg").read_text("utf-8")


def app_icon_svg() -> str:
    """Ember's own icon in its colour: a desktop shows it outside the app's palette."""
    return icon_svg(APP_ICON).replace("currentColor", APP_ICON_COLOR)


def app_icon() -> QIcon:
    """The window's icon (title bar, task switcher)."""
    return themed_icon(APP_ICON, QColor(APP_ICON_COLOR), APP_ICON_SIZES)


def themed_icon(name: str, color: QColor, sizes: tuple[int, ...] = ICON_SIZES) -> QIcon:
    """The icon drawn in `color`, at the sizes lists and toolbars ask for."""
    renderer = QSvgRenderer(QByteArray(icon_svg(name).replace("currentColor", color.name()).encode()))
    icon = QIcon()
    for size in sizes:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        icon.addPixmap(pixmap)
    return icon
