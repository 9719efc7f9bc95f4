"""The Server panel driven as a user does: load a model in chat, switch the server on, paste the
copied Python example into another program (a real `python` process with the official openai
client), see the request in the list; a wrong key is refused and listed; the Chat page goes on
working beside it; the server comes back on at the next start with the same key."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication

from app.views.server_page import ServerPage
from tests.e2e.conftest import load_model, set_sampling, type_and_send

pytestmark = pytest.mark.timeout(240)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def open_server_panel(qtbot, window) -> ServerPage:
    window.nav.setCurrentRow(4)
    page = window.stack.currentWidget()
    assert isinstance(page, ServerPage)
    return page


def click_box(qtbot, box) -> None:
    """Click a check box on its box (a click far right of its text does not toggle it, as for a user)."""
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(6, box.height() // 2))


def run_snippet(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_serve_paste_the_example_and_see_the_request(qtbot, open_window, smollm2_path):
    window = open_window()
    load_model(qtbot, window)
    page = open_server_panel(qtbot, window)
    assert not page.controller.running and "Off" in page.status.text()
    page.port.setValue(free_port())
    page.port.editingFinished.emit()
    click_box(qtbot, page.switch)
    assert page.controller.running and "Serving at http://127.0.0.1:" in page.status.text()
    assert smollm2_path.stem in page.models.text()
    assert page.key.echoMode() == page.key.EchoMode.Password
    assert page.controller.settings.api_key not in page.python.toPlainText()  # hidden on screen ...

    page.examples.setCurrentIndex(1)  # the Python tab
    qtbot.mouseClick(page.copy_example, Qt.MouseButton.LeftButton)  # ... but in the copied snippet
    snippet = QGuiApplication.clipboard().text()
    assert page.controller.settings.api_key in snippet
    with qtbot.waitSignal(page.controller.request_recorded, timeout=120000):
        pasted = run_snippet(snippet.replace("client.chat.completions.create(", "client.chat.completions.create("
                                             "max_tokens=8, "))
    assert pasted.returncode == 0, pasted.stderr
    assert pasted.stdout.strip()
    record = page.record_model.row_object(0)
    assert (record.endpoint, record.status, record.model) == ("/v1/chat/completions", 200, smollm2_path.stem)
    assert record.tokens and record.tokens > 0

    wrong = snippet.replace(page.controller.settings.api_key, "ember-someone-else-guessing")
    with qtbot.waitSignal(page.controller.request_recorded, timeout=30000):
        refused = run_snippet(wrong)
    assert refused.returncode != 0 and "401" in refused.stderr
    assert page.record_model.row_object(0).status == 401

    window.nav.setCurrentRow(0)  # the Chat page goes on working while serving
    window.chat_page.new_chat()
    set_sampling(window, max_tokens=6)
    type_and_send(qtbot, window, "Say hi")
    assert window.services.chats.branch(window.chat.session_id)[-1].status == "complete"
    key, port = page.controller.settings.api_key, page.controller.settings.port
    window.close()

    again = open_window()  # it was on when Ember closed: on again, same key and port
    qtbot.waitUntil(lambda: len(again._pending_pages) == 0, timeout=30000)
    page = open_server_panel(qtbot, again)
    assert page.controller.running
    assert (page.controller.settings.api_key, page.controller.settings.port) == (key, port)
    assert "None loaded" in page.models.text()
    click_box(qtbot, page.switch)
    assert not page.controller.running


def test_network_choice_warns_and_a_new_key_replaces_the_old(qtbot, open_window):
    window = open_window()
    page = open_server_panel(qtbot, window)
    assert not page.network_warning.isVisibleTo(page)
    click_box(qtbot, page.network)
    assert page.controller.settings.network and page.network_warning.isVisibleTo(page)
    old = page.controller.settings.api_key
    qtbot.mouseClick(page.new_key, Qt.MouseButton.LeftButton)
    assert page.controller.settings.api_key != old and page.key.text() == page.controller.settings.api_key
    qtbot.mouseClick(page.copy_key, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == page.controller.settings.api_key
    click_box(qtbot, page.network)
    assert not page.controller.settings.network


def test_a_model_for_the_server_alone_is_switched_without_touching_the_chat_page(qtbot, open_window, smollm2_path):
    from openai import OpenAI

    window = open_window()
    page = open_server_panel(qtbot, window)
    page.port.setValue(free_port())
    page.port.editingFinished.emit()
    click_box(qtbot, page.switch)
    qtbot.waitUntil(lambda: page.model_choice.count() > 1, timeout=20000)  # the library was scanned
    assert page.model_choice.currentText() == "The Chat page's model" and not page.serve_button.isEnabled()
    page.model_choice.setCurrentIndex(page.model_choice.findText(smollm2_path.name))
    page.model_choice.activated.emit(page.model_choice.currentIndex())
    assert page.serve_button.isEnabled()
    qtbot.mouseClick(page.serve_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.controller.own_model is not None and page.controller.loading_path is None,
                    timeout=60000)
    assert "for the server alone" in page.models.text() and not page.serve_button.isEnabled()
    assert window.runtime.chat_model is None  # the Chat page loaded nothing

    client = OpenAI(base_url=page.controller.base_url(), api_key=page.controller.settings.api_key)
    reply = client.chat.completions.create(model=smollm2_path.stem, max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert reply.model == smollm2_path.stem and reply.choices[0].message.content

    load_model(qtbot, window)  # the Chat page loads its own copy: two processes, neither disturbed
    served_host, chat_host = page.controller.own_model.host, window.runtime.chat_model.host
    assert served_host is not chat_host and served_host.alive and chat_host.alive

    page.model_choice.setCurrentIndex(0)  # back to the Chat page's model
    page.model_choice.activated.emit(0)
    qtbot.mouseClick(page.serve_button, Qt.MouseButton.LeftButton)
    assert page.controller.own_model is None and "the Chat page's" in page.models.text()
    qtbot.waitUntil(lambda: not served_host.alive, timeout=30000)  # the server's own process stopped
    assert chat_host.alive and window.runtime.chat_model.host is chat_host
    again = client.chat.completions.create(model=smollm2_path.stem, max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert again.choices[0].message.content
