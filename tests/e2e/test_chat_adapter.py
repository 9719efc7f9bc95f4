"""A chat answers with its LoRA adapter: picked in the chat's settings, put on the loaded model in place
(no reload), recorded with each reply; the Fine-tune page's "Open in chat" makes such a chat."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.finetune.export import open_adapter
from tests.e2e.conftest import load_model, set_sampling, type_and_send
from tests.support.gguf_files import write_lora_adapter

pytestmark = pytest.mark.timeout(240)
PROMPT = "Say hello"


def stored_adapter(ember_home, base, name="fact"):
    """An adapter as the Fine-tune page stores it: EMBER_HOME/adapters/<name>/adapter.gguf + adapter.json."""
    folder = ember_home / "adapters" / name
    folder.mkdir(parents=True)
    write_lora_adapter(base, folder / "adapter.gguf", scale=0.5, targets=("attn_q", "attn_v", "ffn_down"))
    (folder / "adapter.json").write_text(json.dumps({"name": name, "base_model": {"path": str(base)},
                                                     "mode": "qa", "steps": 40, "train_loss": 0.5}))
    return folder


def last_reply(window):
    return window.services.chats.branch(window.chat.session_id)[-1]


def pick_adapter(window, gguf, scale: float) -> None:
    """As a user: open the Adapter list (it is read fresh), choose, set the strength."""
    box = window.chat_page.settings.adapter
    box.combo.opening.emit()  # what showPopup says first (the popup itself warns under offscreen Qt)
    index = box.combo.findData(str(gguf))
    assert index > 0, "the stored adapter is listed"
    box.combo.setCurrentIndex(index)
    box.combo.activated.emit(index)
    box.scale.setValue(scale)
    window.chat_page.settings.flush()


def test_a_chat_uses_its_adapter_without_a_reload(qtbot, open_window, ember_home, smollm2_path):
    folder = stored_adapter(ember_home, smollm2_path)
    window = open_window()
    load_model(qtbot, window)
    host = window.services.chat_model.host
    pid = host.pid
    window.chat_page.new_chat()
    set_sampling(window, max_tokens=12)
    type_and_send(qtbot, window, PROMPT)
    plain = last_reply(window)
    assert plain.provenance.adapter_path is None

    window.chat_page.new_chat()  # same settings, no adapter yet
    pick_adapter(window, folder / "adapter.gguf", 1.0)
    assert window.services.chats.get_session(window.chat.session_id).adapter_path == str(folder / "adapter.gguf")
    type_and_send(qtbot, window, PROMPT)
    tuned = last_reply(window)
    assert tuned.status == "complete"
    assert tuned.content != plain.content
    assert (tuned.provenance.adapter_path, tuned.provenance.adapter_scale) == (str(folder / "adapter.gguf"), 1.0)

    window.chat_page.new_chat()  # copies the adapter; strength 0 is the model as it is
    assert window.chat_page.settings.adapter.adapter_path() == str(folder / "adapter.gguf")
    window.chat_page.settings.adapter.scale.setValue(0.0)
    window.chat_page.settings.flush()
    type_and_send(qtbot, window, PROMPT)
    assert last_reply(window).content == plain.content
    assert host.pid == pid and window.services.chat_model.host is host  # never reloaded


def test_open_in_chat_from_the_finetune_page_and_a_missing_adapter_says_what_to_do(
        qtbot, open_window, ember_home, smollm2_path):
    folder = stored_adapter(ember_home, smollm2_path, name="notes")
    window = open_window()
    load_model(qtbot, window)
    window.chat_page.new_chat()
    set_sampling(window, max_tokens=8)
    window._open_adapter(open_adapter(folder), 0.5)  # what the page's "Open in chat" button emits
    session = window.services.chats.get_session(window.chat.session_id)
    assert session.title == "Chat with notes"
    assert (session.adapter_path, session.adapter_scale) == (str(folder / "adapter.gguf"), 0.5)
    assert window.chat_page.isVisible()
    box = window.chat_page.settings.adapter
    assert box.adapter_path() == str(folder / "adapter.gguf") and box.scale.value() == 0.5
    type_and_send(qtbot, window, PROMPT)
    assert last_reply(window).provenance.adapter_scale == 0.5

    shutil.rmtree(folder)  # the user deleted it; the chat still names it
    window.chat_page.list_adapters()
    assert "missing" in box.combo.currentText()
    with pytest.raises(AssertionError, match="no reply"):  # the turn ends with the error, no reply
        type_and_send(qtbot, window, PROMPT)
    assert window.error_bar.isVisible()
    assert "adapter could not be used" in window.error_bar.message.text()
    assert "Pick another adapter" in window.error_bar.hint.text()
    assert [m.role for m in window.services.chats.branch(window.chat.session_id)] == ["user", "assistant"]
