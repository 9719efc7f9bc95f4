"""The Settings page driven as a user does: each change is saved at once and used (a new chat's
context and system prompt, the theme), a value that cannot work is refused in the error bar with
the saved value shown again, the library's folders and the server's port are set here, and a new
window shows what was chosen."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QFont, QPalette

from app.views.settings_page import SettingsPage
from app.views.theme import is_dark
from engine.config import load_settings, update_settings
from engine.preferences import load_preferences


def open_settings(window) -> SettingsPage:
    window.nav.setCurrentRow(5)
    page = window.stack.currentWidget()
    assert isinstance(page, SettingsPage)
    return page


@pytest.fixture
def keep_look(qapp):
    """The theme and font are the application's: put them back after the test."""
    palette, font = QPalette(qapp.palette()), QFont(qapp.font())
    yield
    qapp.setPalette(palette)
    qapp.setFont(font)


def test_choices_are_saved_used_and_shown_again(qtbot, make_window, ember_home, tmp_path, keep_look, qapp):
    window = make_window()
    page = open_settings(window)
    paths = window.services.paths
    page.context.setValue(8192)
    page.context.editingFinished.emit()
    page.system_prompt.setPlainText("Answer like a ship's captain.")
    qtbot.waitUntil(lambda: load_preferences(paths).system_prompt == "Answer like a ship's captain.", timeout=3000)
    page.threads.setValue(1)
    page.gpu_layers.setValue(0)
    page.flash.setChecked(False)  # on by default
    prefs = load_preferences(paths)
    assert (prefs.context_length, prefs.threads, prefs.gpu_layers, prefs.flash_attention) == (8192, 1, "0", False)

    session = window.chat.new_session()  # no chat was open: it starts from the choices
    assert (session.context_length, session.system_prompt) == (8192, "Answer like a ship's captain.")

    page.theme.setCurrentIndex(page.theme.findData("dark"))
    page.theme.activated.emit(page.theme.currentIndex())
    assert is_dark(qapp.palette())
    page.font_size.setValue(15)
    page.font_size.editingFinished.emit()
    assert qapp.font().pointSize() == 15

    page.embedding.setText("/models/notes.txt")  # not a GGUF
    page.embedding.editingFinished.emit()
    assert window.error_bar.isVisible() and ".gguf" in window.error_bar.hint.text()
    assert page.embedding.text() == "" and load_preferences(paths).embedding_model == ""

    folder = tmp_path / "more-models"
    folder.mkdir()
    with qtbot.waitSignal(window.library.library_changed, timeout=20000):
        window.library.add_folder(str(folder))
    assert [page.folders.item(i).text() for i in range(page.folders.count())] == [str(folder.resolve())]
    page.folders.setCurrentRow(0)
    with qtbot.waitSignal(window.library.library_changed, timeout=20000):
        page.forget_folder.click()
    assert page.folders.count() == 0

    page.port.setValue(18080)
    page.port.editingFinished.emit()
    assert window.controllers.server.settings.port == 18080

    update_settings(paths.settings, lambda s: s.set("memory_bandwidth", {"bytes_per_s": 2e10}))
    page.show_preferences(load_preferences(paths))
    assert "Memory bandwidth" in page.measured.text()
    page.forget_measured.click()
    assert load_settings(paths.settings).get("memory_bandwidth") is None
    assert load_preferences(paths).context_length == 8192  # the choices stay
    window.close()

    again = open_settings(make_window())
    assert (again.context.value(), again.threads.value(), again.gpu_layers.value()) == (8192, 1, 0)
    assert again.theme.currentData() == "dark" and again.font_size.value() == 15
    assert again.system_prompt.toPlainText() == "Answer like a ship's captain."
    assert again.port.value() == 18080
