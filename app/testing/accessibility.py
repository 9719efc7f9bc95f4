"""What assistive technology hears: a widget's accessible name as Qt reports it, and the focusable
widgets that have none, on every page and tab of the window.

The name is the one Qt's accessibility layer gives a screen reader
(`QAccessible.queryAccessibleInterface(widget).text(Name)`): the accessible name when set, otherwise
what Qt derives (a button's text, a label's buddy ...). A widget with a focus proxy never holds the
focus itself (a spin box's inner line edit hands it to the spin box), so only the proxy is judged.
"""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QApplication, QTabWidget, QWidget


def accessible_name(widget: QWidget) -> str:
    interface = QAccessible.queryAccessibleInterface(widget)
    return interface.text(QAccessible.Text.Name) if interface is not None and interface.isValid() else ""


def describe(widget: QWidget) -> str:
    """A widget as a failure message names it: its class, objectName and where it sits."""
    chain, parent = [], widget.parentWidget()
    while parent is not None and len(chain) < 3:
        chain.append(parent.objectName() or type(parent).__name__)
        parent = parent.parentWidget()
    return f"{type(widget).__name__} {widget.objectName()!r} in {' < '.join(chain)}"


def unnamed_focusable(root: QWidget) -> list[QWidget]:
    """Visible widgets under `root` that the Tab key or a click can focus and that have no accessible name."""
    return [w for w in root.findChildren(QWidget)
            if w.isVisible() and w.focusPolicy() != Qt.FocusPolicy.NoFocus and w.focusProxy() is None
            and not accessible_name(w).strip()]


def _reveal(widget: QWidget) -> None:
    """Make every tab that holds `widget` the current one, so that it can be shown."""
    child, parent = widget, widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QTabWidget):
            index = parent.indexOf(child)
            if index >= 0:
                parent.setCurrentIndex(index)
        child, parent = parent, parent.parentWidget()


def every_page_and_tab(window) -> Iterator[str]:
    """Show each page of the main window (built at once if it was not yet) and each tab in it, nested
    tabs included; yield where it is ("Models › Downloads") once that is on screen."""
    for row in range(window.nav.count()):
        page_name = window.nav.item(row).text()
        window.nav.setCurrentRow(row)
        QApplication.processEvents()
        page = window.stack.currentWidget()
        yield page_name
        for tabs in page.findChildren(QTabWidget):
            for index in range(tabs.count()):
                _reveal(tabs)
                tabs.setCurrentIndex(index)
                QApplication.processEvents()
                yield f"{page_name} › {tabs.tabText(index)}"
