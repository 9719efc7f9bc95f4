"""What a screen reader is told when a reply ends, and that a long reply is told in part."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from app.testing.helpers import SignalLog
from app.views.announcer import MAX_ANNOUNCED_CHARS, Announcer, reply_announcement


def test_the_announcement_says_how_the_reply_ended():
    assert reply_announcement(" Paris. ", "stop", None) == "Reply: Paris."
    assert reply_announcement("Once upon", "cancelled", None) == "Reply: Once upon (stopped)"
    assert reply_announcement("A long", "length", None) == "Reply: A long (stopped at the token limit)"
    assert reply_announcement("", "error", "the model process stopped") == "The reply failed: the model process stopped"


def test_a_long_reply_is_announced_in_part_and_an_empty_one_not_at_all(qtbot):
    label = QLabel("conversation")
    qtbot.addWidget(label)
    announcer = Announcer()
    said = SignalLog(announcer.announced)
    announcer.announce(label, "   ")
    assert said.calls == []
    announcer.announce(label, "word " * 1000)
    (text,), = said.calls
    assert len(text) < MAX_ANNOUNCED_CHARS + 50 and text.endswith("(the rest is in the conversation)")
    assert text.startswith("word word")
