"""The Chat page's sessions and branches: list, search, new, rename, delete/undo, the shown branch,
switching versions, deleting messages, per-chat settings, export and import.

All of it is quick SQL on the UI thread's connection; replies are the ReplyController's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.changes import ChangeNotice, Changes
from app.models.message_model import DisplayMessage
from app.models.session_list_model import SessionRow
from app.services import Services
from engine.chat import export, presets
from engine.chat.presets import Preset
from engine.errors import EmberError, InvalidInput, NotFound
from engine.preferences import load_preferences
from engine.runtime.sampling import Sampling
from engine.store.chat_documents_repo import ChatDocuments, ChatDocumentsRepository
from engine.store.chats import Message, Session
from engine.store.documents_repo import DocumentsRepository


@dataclass(frozen=True)
class CollectionChoice:
    """A collection as the chat's documents box lists it."""

    id: int
    name: str
    chunks: int
    tokens: int  # in the embedding model's tokens (a chat model's count is a little higher)


class ChatController(QObject):
    sessions_listed = Signal(list)  # list[SessionRow] (search results while searching)
    session_changed = Signal(object)  # Session | None
    branch_loaded = Signal(list)  # list[DisplayMessage]
    focus_message = Signal(int)  # scroll to this message (a search hit)
    deleted = Signal(int, str)  # session id, title: the view offers Undo
    documents_changed = Signal(object, object)  # list[CollectionChoice], ChatDocuments of the shown chat
    notice = Signal(str)
    error = Signal(object)  # EmberError

    def __init__(self, services: Services, notices: ChangeNotice, parent=None) -> None:
        super().__init__(parent)
        self.services = services
        self.notices = notices
        self.chats = services.chats
        self.documents = ChatDocumentsRepository(services.conn)
        notices.changed.connect(self._on_changes)
        self.session_id: int | None = None
        self.search_text = ""
        self.items: list[DisplayMessage] = []  # the shown branch, as last sent to the view
        self.busy = lambda: False  # set by the reply controller: True while a turn is active

    def _on_changes(self, changes: Changes) -> None:
        """Chats changed elsewhere (another page imported or made one): list them again."""
        if changes.sessions and changes.source is not self:
            self.refresh_sessions()
        if changes.collections:
            self.refresh_documents()

    def _publish_sessions(self) -> None:
        self.notices.publish(Changes(sessions=True, source=self))

    # --- the list -------------------------------------------------------------------------------
    def session(self) -> Session | None:
        if self.session_id is None:
            return None
        try:
            return self.chats.get_session(self.session_id)
        except NotFound:
            return None

    def sessions(self) -> list[Session]:
        return self.chats.list_sessions()

    def set_search(self, text: str) -> None:
        self.search_text = text.strip()
        self.refresh_sessions()

    def refresh_sessions(self) -> None:
        if not self.search_text:
            self.sessions_listed.emit([SessionRow(s) for s in self.sessions()])
            return
        rows, seen = [], set()
        sessions = {s.id: s for s in self.sessions()}
        for hit in self.chats.search(self.search_text, limit=200):
            if hit.session_id in sessions and hit.session_id not in seen:
                seen.add(hit.session_id)
                rows.append(SessionRow(sessions[hit.session_id], hit.snippet, hit.message_id))
        self.sessions_listed.emit(rows)

    # --- sessions -------------------------------------------------------------------------------
    def new_session(self) -> Session | None:
        """A new chat that starts with the current chat's settings."""
        if self.busy():
            self.notice.emit("Stop the reply before starting another chat.")
            return None
        previous = self.session()
        defaults = load_preferences(self.services.paths)  # a chat with none open before starts from these
        session = self.chats.create_session(
            system_prompt=previous.system_prompt if previous else defaults.system_prompt,
            sampling=previous.sampling if previous else {},
            context_length=previous.context_length if previous else defaults.context_length,
            model_path=previous.model_path if previous else None)
        if previous is not None and previous.adapter_path:  # and the same adapter
            session = self._guard(lambda: self.chats.update_session(
                session.id, adapter_path=previous.adapter_path, adapter_scale=previous.adapter_scale)) or session
        if previous is not None:  # and the same documents
            used = self.documents.settings(previous.id)
            if used.active:
                self._guard(lambda: self.documents.save_settings(session.id, used.collection_ids, used.mode, used.k))
        self.search_text = ""
        self.select(session.id)
        self._publish_sessions()
        return session

    def new_session_with_adapter(self, adapter_path: str, scale: float, title: str) -> Session | None:
        """A new chat that answers with this LoRA adapter (the Fine-tune page's "Open in chat")."""
        session = self.new_session()
        if session is None:
            return None
        updated = self._guard(lambda: self.chats.update_session(session.id, title=title, adapter_path=adapter_path,
                                                                adapter_scale=scale))
        if updated is not None:
            self.session_changed.emit(updated)
            self._publish_sessions()
        return updated

    def adapters(self) -> list:
        """The adapters in EMBER_HOME/adapters/, for the chat's Adapter box (newest names as the user gave them)."""
        from engine.finetune.adapter_record import list_adapters

        try:
            return list_adapters(self.services.paths)
        except (OSError, ValueError) as exc:
            self.error.emit(InvalidInput(f"The adapters folder could not be read: {exc}"))
            return []

    def select(self, session_id: int | None, message_id: int | None = None) -> None:
        """Show a chat; with `message_id` (a search hit) show the branch holding that message."""
        if self.busy() and session_id != self.session_id:
            self.notice.emit("Stop the reply before switching chats.")
            return
        self.session_id = session_id
        if session_id is not None and message_id is not None:
            branch_ids = {m.id for m in self.chats.branch(session_id)}
            if message_id not in branch_ids:
                self.chats.set_current_leaf(session_id, self.chats.newest_leaf_under(message_id))
        self.session_changed.emit(self.session())
        self.refresh_sessions()
        self.reload_branch()
        self.refresh_documents()
        if message_id is not None:
            self.focus_message.emit(message_id)

    def rename(self, session_id: int, title: str) -> None:
        if self._guard(lambda: self.chats.update_session(session_id, title=title)) is not None:
            self.refresh_sessions()
            if session_id == self.session_id:
                self.session_changed.emit(self.session())

    def delete(self, session_id: int) -> None:
        """Move a chat to the bin (Undo brings it back; the bin is emptied at the next start)."""
        if self.busy() and session_id == self.session_id:
            self.notice.emit("Stop the reply before deleting this chat.")
            return
        title = self.chats.get_session(session_id).title
        self.chats.delete_session(session_id)
        if session_id == self.session_id:
            remaining = self.sessions()
            self.session_id = None
            self.select(remaining[0].id if remaining else None)
        else:
            self.refresh_sessions()
        self.deleted.emit(session_id, title)
        self._publish_sessions()

    def restore(self, session_id: int) -> None:
        self.chats.restore_session(session_id)
        self.select(session_id)

    def update_settings(self, **changes) -> None:
        """Save the current chat's system prompt, sampling or context length."""
        if self.session_id is None:
            return
        if "sampling" in changes:
            try:
                changes["sampling"] = Sampling.from_dict(changes["sampling"]).to_dict()
            except EmberError as error:
                self.error.emit(error)
                return
        self._guard(lambda: self.chats.update_session(self.session_id, **changes))

    def presets(self) -> list[Preset]:
        return presets.list_presets(self.services.conn)

    def save_preset(self, name: str, system_prompt: str) -> Preset | None:
        preset = self._guard(lambda: presets.save_preset(self.services.conn, name, system_prompt))
        if preset is not None:
            self.notice.emit(f"Saved the preset “{preset.name}”.")
        return preset

    def delete_preset(self, name: str) -> None:
        self._guard(lambda: presets.delete_preset(self.services.conn, name))

    # --- the chat's documents ----------------------------------------------------------------------
    def collection_choices(self) -> list[CollectionChoice]:
        repo = DocumentsRepository(self.services.conn)
        choices = []
        for collection in repo.list_collections():
            counts = repo.counts(collection.id)
            choices.append(CollectionChoice(collection.id, collection.name, counts.chunks, counts.tokens))
        return choices

    def chat_documents(self) -> ChatDocuments:
        return self.documents.settings(self.session_id) if self.session_id is not None else ChatDocuments()

    def refresh_documents(self) -> None:
        """Tell the view the collections there are and which ones the shown chat uses."""
        try:
            self.documents_changed.emit(self.collection_choices(), self.chat_documents())
        except EmberError as error:
            self.error.emit(error)

    def set_chat_documents(self, collection_ids, mode: str = "retrieve", k: int = 5) -> None:
        """Which collections the shown chat answers from, and how (the k best chunks, or whole documents)."""
        if self.session_id is None:
            session = self.new_session()
            if session is None:
                return
        self._guard(lambda: self.documents.save_settings(self.session_id, collection_ids, mode, k))

    # --- the shown branch -----------------------------------------------------------------------
    def branch_items(self) -> list[DisplayMessage]:
        if self.session_id is None:
            return []
        tree = self.chats.sibling_ids(self.session_id)
        branch = self.chats.branch(self.session_id)
        sources = self._sources([m.id for m in branch if m.role == "assistant"])
        items = []
        for message in branch:
            siblings = tree.get(message.parent_id, [message.id])
            items.append(DisplayMessage(message, siblings.index(message.id) + 1, len(siblings),
                                        tuple(sources.get(message.id, ()))))
        return items

    def _sources(self, message_ids: list[int]) -> dict:
        """The sources each of these replies had in its prompt (what its citations open)."""
        try:
            return self.documents.cited_sources(message_ids)
        except EmberError:
            return {}  # a reply without its sources still reads; the error is in the log

    def reload_branch(self) -> None:
        self._show(self.branch_items())

    def _show(self, items: list[DisplayMessage]) -> None:
        self.items = items
        self.branch_loaded.emit(items)

    def _display(self, message: Message) -> DisplayMessage:
        siblings = [m.id for m in self.chats.children(message.session_id, message.parent_id)]
        sources = self._sources([message.id]).get(message.id, ()) if message.role == "assistant" else ()
        return DisplayMessage(message, siblings.index(message.id) + 1, len(siblings), tuple(sources))

    def show_new_reply(self, reply_id: int) -> None:
        """Show a reply that was just written (and the prompt above it, when that is new too) without
        reading the whole branch again: what a long chat needs at the start of every turn."""
        shown = {item.id: row for row, item in enumerate(self.items)}
        chain = [self.chats.get_message(reply_id)]
        while chain[0].parent_id is not None and chain[0].parent_id not in shown and len(chain) < 3:
            chain.insert(0, self.chats.get_message(chain[0].parent_id))
        parent = chain[0].parent_id
        if parent is not None and parent not in shown or chain[0].session_id != self.session_id:
            self.reload_branch()  # not a continuation of what is shown
            return
        keep = shown[parent] + 1 if parent is not None else 0
        self._show(self.items[:keep] + [self._display(m) for m in chain])

    def refresh_message(self, message_id: int) -> None:
        """Show the saved state of one message (a reply that just ended) in place."""
        rows = [row for row, item in enumerate(self.items) if item.id == message_id]
        if not rows:
            return
        items = list(self.items)
        old = items[rows[0]]
        items[rows[0]] = DisplayMessage(self.chats.get_message(message_id), old.sibling_index, old.sibling_count,
                                        old.sources)
        self._show(items)

    def switch_branch(self, message_id: int, step: int) -> None:
        """Show the previous (-1) or next (+1) version of a message, with its newest replies."""
        if self.busy():
            return
        message = self.chats.get_message(message_id)
        siblings = self.chats.sibling_ids(message.session_id).get(message.parent_id, [message_id])
        target = siblings[(siblings.index(message_id) + step) % len(siblings)]
        self.chats.set_current_leaf(message.session_id, self.chats.newest_leaf_under(target))
        self.reload_branch()

    def delete_message(self, message_id: int) -> None:
        """Delete a message and everything under it; the chat shows its parent's branch."""
        if self.busy():
            return
        self._guard(lambda: self.chats.delete_message(message_id))
        self.reload_branch()

    # --- export / import ------------------------------------------------------------------------
    def export(self, path: Path | str) -> Path | None:
        if self.session_id is None:
            self.error.emit(InvalidInput("There is no chat to export.", "Select a chat first."))
            return None
        written = self._guard(lambda: export.write_export(self.chats, self.session_id, Path(path)))
        if written is not None:
            self.notice.emit(f"Exported to {written}")
        return written

    def import_file(self, path: Path | str) -> int | None:
        session_id = self._guard(lambda: export.import_json(self.chats, Path(path)))
        if session_id is not None:
            self.search_text = ""
            self.select(session_id)
            self.notice.emit(f"Imported {Path(path).name}")
            self._publish_sessions()
        return session_id

    def _guard(self, action):
        try:
            return action()
        except EmberError as error:
            self.error.emit(error)
            return None
        except OSError as exc:
            self.error.emit(EmberError(f"Could not use the file: {exc.strerror or exc}.",
                                       "Check the folder exists and that you may write there."))
            return None
