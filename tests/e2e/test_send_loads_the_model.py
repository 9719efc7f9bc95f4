"""A first message typed before any model is loaded: Send loads the model in the picker, then sends."""

from __future__ import annotations

import pytest

from engine.paths import starter_model
from tests.e2e.conftest import rows, type_and_send

pytestmark = pytest.mark.timeout(180)


def test_send_with_no_model_loaded_loads_the_picked_one_then_sends(qtbot, open_window):
    window = open_window()
    page = window.chat_page
    qtbot.waitUntil(lambda: page.model_bar.entry() is not None, timeout=20000)
    assert window.services.chat_model is None
    page.settings.max_tokens.setValue(8)
    page.settings.context.setValue(1024)
    with qtbot.waitSignal(window.runtime.loaded, timeout=90000):
        type_and_send(qtbot, window, "Say hello", wait=False)
    qtbot.waitUntil(lambda: len(rows(window)) == 2 and not window.replies.generating, timeout=60000)
    user, reply = rows(window)
    assert user.message.content == "Say hello"
    assert reply.message.status == "complete" and reply.message.content.strip()
    assert window.services.chat_model is not None and window.services.chat_model.path == str(starter_model())
