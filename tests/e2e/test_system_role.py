"""A model whose chat template refuses a system role still runs its own template; the system prompt
goes into the first user turn, and the window says so once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import load_model
from tests.support.gguf_files import copy_with_chat_template

pytestmark = pytest.mark.timeout(180)

TEMPLATES = Path(__file__).resolve().parents[1] / "support" / "chat_templates"


def test_a_template_without_a_system_role_is_used_and_the_user_is_told_once(qtbot, open_window, smollm2_path,
                                                                            tmp_path):
    model = copy_with_chat_template(smollm2_path, tmp_path / "gemma-style.gguf",
                                    (TEMPLATES / "gemma-instruct.jinja").read_text(encoding="utf-8"))
    window = open_window()
    with qtbot.waitSignal(window.library.opened, timeout=20000):
        window.library.open_file(str(model))
    load_model(qtbot, window, expect_source="added")
    loaded = window.services.chat_model
    assert loaded.host.info["template"] == "gguf" and loaded.host.info["system_in_user"]
    window.chat.new_session()
    window.chat.update_settings(system_prompt="Answer like a pirate.", sampling={"max_tokens": 4})
    told = []
    window.replies.notice.connect(told.append)
    for text in ("Hello", "Again"):
        with qtbot.waitSignal(window.replies.generating_changed, timeout=60000, check_params_cb=lambda on: not on):
            window.replies.send(text)
    assert len(told) == 1 and "system prompt" in told[0]
    reply = window.services.chats.branch(window.chat.session_id)[-1]
    assert reply.status == "complete" and reply.provenance.template_hash == loaded.template_hash
