"""The change notice: which kinds of data an action changed, sent from the controller that made the
change to every other controller (as Anki's operations return what they changed).

A controller that edits the library publishes `Changes(library=True)`; the Models page's fit
refreshes, and later pages (Documents, Fine-tune) listen for `collections` and `adapters` the same
way. Nothing else travels between controllers: no controller reaches into another's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal


@dataclass(frozen=True)
class Changes:
    library: bool = False  # model files added, removed, downloaded or hashed
    sessions: bool = False  # chats created, deleted, imported or renamed
    collections: bool = False  # document collections (the Documents page)
    adapters: bool = False  # LoRA adapters (the Fine-tune page)
    source: object = None  # who published it (a receiver may skip its own)

    def __bool__(self) -> bool:
        return self.library or self.sessions or self.collections or self.adapters


class ChangeNotice(QObject):
    """One per window; every controller gets it. UI thread only."""

    changed = Signal(object)  # Changes

    def publish(self, changes: Changes) -> None:
        if changes:
            self.changed.emit(changes)
