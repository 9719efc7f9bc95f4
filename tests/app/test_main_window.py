"""The window without a model: names for every control, pages, errors in the window, shortcuts,
geometry, the light/dark palette."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QWidget,
)

from app.views.main_window import LATER_PAGES, PAGES, slug
from app.views.theme import apply_theme, is_dark
from engine.errors import BadModelFile, EmberError

INTERACTIVE = (QAbstractButton, QLineEdit, QPlainTextEdit, QComboBox, QAbstractSpinBox, QAbstractItemView)


def inside_composite(widget: QWidget) -> bool:
    """Parts Qt builds inside a combo box, spin box, line edit or item view (their parent carries the name)."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, (QComboBox, QAbstractSpinBox, QLineEdit, QAbstractItemView)):
            return True
        parent = parent.parentWidget()
    return widget.objectName().startswith("qt_")


def ours(window, widget: QWidget) -> bool:
    """The window's own widgets and the Chat page's (the other pages belong to their issues)."""
    others = [window.stack.widget(row) for row in range(1, window.stack.count())]
    parent = widget
    while parent is not None:
        if parent in others:
            return False
        parent = parent.parentWidget()
    return not inside_composite(widget)


def test_every_interactive_widget_has_an_object_name_and_an_accessible_name(window):
    widgets = [w for kind in INTERACTIVE for w in window.findChildren(kind) if ours(window, w)]
    assert len(widgets) >= 40
    unnamed = [f"{type(w).__name__} {w.objectName()!r} {w.accessibleName()!r}" for w in widgets
               if not (w.objectName() and w.accessibleName())]
    assert unnamed == []
    names = [w.objectName() for w in widgets]
    duplicates = {n for n in names if names.count(n) > 1}
    assert duplicates == set()


def test_pages_are_built_after_the_first_paint(window, qtbot):
    nav = window.findChild(QListWidget, "navigation")
    assert [nav.item(i).text() for i in range(nav.count())] == PAGES
    for row, spec in enumerate(LATER_PAGES, start=1):
        nav.setCurrentRow(row)  # built at once when shown first, if the first paint has not built it yet
        page = window.stack.currentWidget()
        assert page.objectName() == f"{slug(spec.name)}Page"
        assert page.findChild(QLabel, f"{slug(spec.name)}PlaceholderLabel") is None
    nav.setCurrentRow(0)
    assert window.stack.currentWidget() is window.chat_page


def test_errors_are_readable_in_the_window_and_it_stays_usable(window, qtbot):
    bar = window.error_bar
    assert not bar.isVisible()
    window.show_error(BadModelFile("The model file is damaged or not a GGUF file.", log_path="/home/u/logs/host.log"))
    assert bar.isVisible()
    assert bar.message.text() == "The model file is damaged or not a GGUF file."
    assert "Download it again" in bar.hint.text() and "/home/u/logs/host.log" in bar.hint.text()
    assert "Traceback" not in bar.hint.text()
    qtbot.mouseClick(window.findChild(QAbstractButton, "dismissErrorButton"), Qt.MouseButton.LeftButton)
    assert not bar.isVisible()

    # sending without a model: the window says what to do and keeps the text
    prompt = window.findChild(QPlainTextEdit, "promptEdit")
    qtbot.keyClicks(prompt, "hello")
    qtbot.keyClick(prompt, Qt.Key.Key_Return)
    assert bar.isVisible() and "No model is loaded" in bar.message.text() and "Load" in bar.hint.text()
    assert prompt.toPlainText() == "hello"
    qtbot.mouseClick(window.findChild(QAbstractButton, "newChatButton"), Qt.MouseButton.LeftButton)
    assert len(window.chat.sessions()) == 1  # still usable


def test_an_unexpected_error_is_shown_as_a_message(window):
    window.show_error(ValueError("odd"))
    assert window.error_bar.message.text() == "odd" and isinstance(window.last_error, EmberError)


def test_keyboard_shortcuts(window, qtbot, monkeypatch):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert len(window.chat.sessions()) == 2
    assert QApplication.focusWidget() is window.chat_page.composer.prompt
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is window.findChild(QLineEdit, "chatSearch")
    stopped = []
    monkeypatch.setattr(window.replies, "stop", lambda: stopped.append(1))
    qtbot.keyClick(window.chat_page.composer.prompt, Qt.Key.Key_Escape)
    assert stopped
    # Shift+Enter adds a line; Enter sends (here: no model, so an error, and the text stays)
    prompt = window.chat_page.composer.prompt
    prompt.setFocus()
    qtbot.keyClicks(prompt, "one")
    qtbot.keyClick(prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(prompt, "two")
    assert prompt.toPlainText() == "one\ntwo"
    with qtbot.waitSignal(window.replies.error):
        qtbot.keyClick(prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def test_geometry_is_remembered_in_the_home(make_window, ember_home):
    first = make_window()
    first.resize(first.minimumWidth() + 10, 530)
    first.close()
    assert "geometry" in (ember_home / "window.ini").read_text()
    second = make_window()
    assert second.height() == 530  # the offscreen screen is narrower than the window, so only the height


def test_palette_follows_the_requested_scheme(qapp, monkeypatch):
    original = QPalette(qapp.palette())
    try:
        monkeypatch.setenv("EMBER_THEME", "dark")
        apply_theme(qapp)
        assert is_dark(qapp.palette())
        monkeypatch.setenv("EMBER_THEME", "light")
        qapp.setPalette(original)
        apply_theme(qapp)
        assert not is_dark(qapp.palette())
    finally:
        qapp.setPalette(original)
        qapp.setStyle("Fusion")
