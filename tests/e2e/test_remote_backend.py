"""A remote server in the window, as a user sets it up: add another Ember server in Settings (it is
checked first; a wrong key is refused and not kept), pick its model in the Chat page's list, chat
exactly as with a local model; the server killed mid-reply is a clear error and the partial reply
and the conversation are kept."""

from __future__ import annotations

import signal

import pytest
from PySide6.QtCore import Qt

from engine.remote.endpoints import load_endpoints
from engine.remote.host import is_remote
from tests.e2e.conftest import set_sampling, type_and_send
from tests.engine.test_remote import start_server

pytestmark = pytest.mark.timeout(240)


def add_server(qtbot, window, url: str, key: str, name: str = "box"):
    window.nav.setCurrentRow(5)
    page = window.stack.currentWidget()
    page.remote_name.setText(name)
    page.remote_url.setText(url)
    page.remote_key.setText(key)
    return page


def test_chat_through_another_ember_and_a_cut_keeps_the_partial_reply(qtbot, open_window, smollm2_path):
    process, port, key = start_server(smollm2_path)
    try:
        window = open_window()
        page = add_server(qtbot, window, f"http://127.0.0.1:{port}", "ember-not-the-right-key-at-all")
        with qtbot.waitSignal(page.error_shown, timeout=30000) as refused:
            qtbot.mouseClick(page.add_remote, Qt.MouseButton.LeftButton)
        assert "refused the API key" in refused.args[0].message
        assert load_endpoints(window.services.paths) == []  # not kept

        page.remote_key.setText(key)
        with qtbot.waitSignal(page.remote_added, timeout=30000):
            qtbot.mouseClick(page.add_remote, Qt.MouseButton.LeftButton)
        assert page.remotes.count() == 1 and page.remote_key.text() == ""

        window.nav.setCurrentRow(0)
        bar = window.chat_page.model_bar
        wanted = f"remote:box/{smollm2_path.stem}"
        qtbot.waitUntil(lambda: bar._row_of(wanted) >= 0, timeout=30000)  # listed beside the local models
        bar.combo.setCurrentIndex(bar._row_of(wanted))
        window.chat_page.new_chat()
        set_sampling(window, max_tokens=10)
        with qtbot.waitSignal(window.runtime.loaded, timeout=30000):
            qtbot.mouseClick(bar.load_button, Qt.MouseButton.LeftButton)
        assert is_remote(window.services.chat_model.path)
        assert "Remote: box" in window.backend_status.text()
        type_and_send(qtbot, window, "What is the capital of France?")
        reply = window.services.chats.branch(window.chat.session_id)[-1]
        assert reply.status == "complete" and reply.content
        assert reply.provenance.model_path == wanted

        set_sampling(window, max_tokens=400, temperature=0.7)
        session = window.chat.session_id
        type_and_send(qtbot, window, "Write a long story about a lighthouse keeper.", wait=False)
        qtbot.waitUntil(lambda: len(window.services.chats.branch(session)) == 4
                        and len(window.services.chats.branch(session)[-1].content) > 10, timeout=60000)
        with qtbot.waitSignal(window.replies.generating_changed, timeout=60000, check_params_cb=lambda on: not on):
            process.send_signal(signal.SIGKILL)
        cut = window.services.chats.branch(session)[-1]
        assert cut.status == "error" and cut.content  # the partial reply is kept
        assert window.error_bar.isVisible() and "box" in window.error_bar.message.text()
        assert [m.role for m in window.services.chats.branch(session)] == ["user", "assistant"] * 2
    finally:
        process.kill()
        process.wait(timeout=20)
