"""A tester's first Ember test: load the starter model, ask, read the reply and the status bar."""

from PySide6.QtWidgets import QLabel

from app.testing.helpers import load_starter_model, send_and_wait_reply


def test_the_starter_model_answers(ember_window, tiny_model):
    load_starter_model(ember_window)
    ember_window.chat_page.settings.max_tokens.setValue(24)
    reply = send_and_wait_reply(ember_window, "What is the capital of France?")
    assert reply.strip()
    assert tiny_model.name in ember_window.findChild(QLabel, "statusModel").text()
