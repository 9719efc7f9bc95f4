"""Say something to assistive technology (a screen reader) without moving the focus: a reply that
finished streaming is announced once, whole, instead of token by token as the text grows. Qt sends
the announcement as a polite accessibility event; the `announced` signal lets tests (and a log) see
what was said."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent
from PySide6.QtWidgets import QWidget

MAX_ANNOUNCED_CHARS = 1500  # a long reply is announced in part; the rest is read from the conversation


class Announcer(QObject):
    announced = Signal(str)

    def announce(self, widget: QWidget, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if len(text) > MAX_ANNOUNCED_CHARS:
            text = text[:MAX_ANNOUNCED_CHARS].rsplit(" ", 1)[0] + "… (the rest is in the conversation)"
        event = QAccessibleAnnouncementEvent(widget, text)
        event.setPoliteness(QAccessible.AnnouncementPoliteness.Polite)
        QAccessible.updateAccessibility(event)
        self.announced.emit(text)


def reply_announcement(reply_text: str, stop_reason: str, error: str | None) -> str:
    """What is said when a reply ends: its text, and why it ended when that is not the model's choice."""
    if error:
        return f"The reply failed: {error}"
    endings = {"length": " (stopped at the token limit)", "cancelled": " (stopped)"}
    return f"Reply: {reply_text.strip()}{endings.get(stop_reason, '')}"
