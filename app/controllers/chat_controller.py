"""The Chat page's controller: sessions, sending, streaming, branches, budget, export. Views call it;
it calls the engine and answers with signals. Generation runs in its own worker thread; the text it
streams is handed to the view in one batch per frame (FRAME_MS)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.models.message_model import DisplayMessage
from app.services import Services
from app.workers import Worker, WorkerPools
from engine.chat import export
from engine.chat.budget import ContextOverflow, measure_budget
from engine.chat.conversation import to_host_messages
from engine.errors import EmberError, InvalidInput
from engine.jobs import CancelToken, TokenEvent
from engine.runtime.sampling import Sampling
from engine.store.chats import Session

FRAME_MS = 33


class ChatController(QObject):
    sessions_changed = Signal()
    session_changed = Signal(object)  # Session | None
    branch_loaded = Signal(list)  # list[DisplayMessage]
    text_arrived = Signal(int, str)  # message id, a frame's worth of text
    generating_changed = Signal(bool)
    reply_finished = Signal(object)  # GenerationStats
    error = Signal(object)  # EmberError
    budget_changed = Signal(object)  # ContextBudget | None
    overflow = Signal(object)  # ContextBudget: the view asks whether to drop the oldest turns

    def __init__(self, services: Services, pools: WorkerPools, parent=None) -> None:
        super().__init__(parent)
        self.services = services
        self.chats = services.chats
        self.pools = pools
        self.session_id: int | None = None
        self._cancel: CancelToken | None = None
        self._streaming_id: int | None = None
        self._buffer: list[str] = []
        self._after_overflow = None
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FRAME_MS)
        self._flush_timer.timeout.connect(self._flush)

    # --- sessions -----------------------------------------------------------------------------
    @property
    def generating(self) -> bool:
        return self._cancel is not None

    def sessions(self) -> list[Session]:
        return self.chats.list_sessions()

    def session(self) -> Session | None:
        return self.chats.get_session(self.session_id) if self.session_id is not None else None

    def new_session(self) -> Session:
        previous = self.session()
        session = self.chats.create_session(
            system_prompt=previous.system_prompt if previous else "",
            sampling=previous.sampling if previous else {},
            context_length=previous.context_length if previous else None)
        self.sessions_changed.emit()
        self.select(session.id)
        return session

    def select(self, session_id: int | None) -> None:
        self.session_id = session_id
        self.session_changed.emit(self.session())
        self.reload_branch()

    def rename(self, session_id: int, title: str) -> None:
        self._guard(lambda: self.chats.update_session(session_id, title=title))
        self.sessions_changed.emit()

    def delete(self, session_id: int) -> None:
        """Moves the chat to the bin; `restore` undoes it."""
        if self.generating and session_id == self.session_id:
            self.stop()
        self.chats.delete_session(session_id)
        if session_id == self.session_id:
            self.select(None)
        self.sessions_changed.emit()

    def restore(self, session_id: int) -> None:
        self.chats.restore_session(session_id)
        self.sessions_changed.emit()
        self.select(session_id)

    def search(self, text: str):
        return self.chats.search(text)

    def update_settings(self, **changes) -> None:
        if self.session_id is None:
            return
        if "sampling" in changes:
            try:
                changes["sampling"] = Sampling.from_dict(changes["sampling"]).to_dict()
            except EmberError as error:
                self.error.emit(error)
                return
        self._guard(lambda: self.chats.update_session(self.session_id, **changes))

    # --- the shown branch ---------------------------------------------------------------------
    def reload_branch(self) -> None:
        if self.session_id is None:
            self.branch_loaded.emit([])
            return
        tree = self.chats.sibling_ids(self.session_id)
        items = []
        for message in self.chats.branch(self.session_id):
            siblings = tree.get(message.parent_id, [message.id])
            items.append(DisplayMessage(message, siblings.index(message.id) + 1, len(siblings)))
        self.branch_loaded.emit(items)

    def switch_branch(self, message_id: int, step: int) -> None:
        """Show the previous (-1) or next (+1) version of a message, with its newest replies."""
        if self.generating:
            return
        message = self.chats.get_message(message_id)
        siblings = self.chats.sibling_ids(message.session_id).get(message.parent_id, [message_id])
        target = siblings[(siblings.index(message_id) + step) % len(siblings)]
        self.chats.set_current_leaf(message.session_id, self.chats.newest_leaf_under(target))
        self.reload_branch()

    def delete_message(self, message_id: int) -> None:
        if self.generating:
            return
        self.chats.delete_message(message_id)
        self.reload_branch()

    # --- turns --------------------------------------------------------------------------------
    def context_length(self) -> int:
        host = self.services.model.host
        loaded = int(host.info.get("n_ctx", 4096)) if host else 4096
        session = self.session()
        wanted = session.context_length if session and session.context_length else loaded
        return min(wanted, loaded)

    def send(self, text: str) -> None:
        if not text.strip():
            self.error.emit(InvalidInput("The message is empty.", "Type something to send."))
            return
        if self.session_id is None:
            self.new_session()
        self._checked_turn(lambda model: self.services.conversation.prepare_send(self.session_id, text, model),
                           extra=[{"role": "user", "content": text}])

    def regenerate(self, message_id: int) -> None:
        self._checked_turn(lambda model: self.services.conversation.prepare_regenerate(
            self.session_id, message_id, model), upto=message_id)

    def edit(self, message_id: int, text: str) -> None:
        self._checked_turn(lambda model: self.services.conversation.prepare_edit(
            self.session_id, message_id, text, model), upto=message_id, replace_last=text)

    def confirm_drop_oldest(self) -> None:
        """The user chose to drop the oldest turns after an overflow warning."""
        action, self._after_overflow = self._after_overflow, None
        if action:
            action()

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()

    def _checked_turn(self, prepare, extra=(), upto: int | None = None, replace_last: str | None = None) -> None:
        """Count the context first; if it overflows, ask (overflow signal) before anything is cut."""
        if self.generating or self.session_id is None:
            return
        model = self.services.model
        if not model.ready:
            self.error.emit(EmberError("No model is loaded.", "Pick a model above and press Load."))
            return
        session = self.session()
        branch = self.chats.branch(self.session_id)
        if upto is not None:
            ids = [m.id for m in branch]
            branch = branch[: ids.index(upto) + 1] if upto in ids else branch
            if branch and branch[-1].role == "assistant":
                branch = branch[:-1]
            if replace_last is not None and branch:
                branch = branch[:-1]
                extra = [{"role": "user", "content": replace_last}]
        messages = to_host_messages(session.system_prompt, branch) + list(extra)
        reserve = Sampling.from_dict(session.sampling).max_tokens
        client = model.host.client()
        worker = Worker(measure_budget, client, messages, reserve, self.context_length())

        def checked(budget) -> None:
            self.budget_changed.emit(budget)
            if budget.overflows:
                self._after_overflow = lambda: self._start_turn(prepare, drop_oldest=True)
                self.overflow.emit(budget)
            else:
                self._start_turn(prepare, drop_oldest=False)

        worker.signals.result.connect(checked)
        worker.signals.error.connect(self.error)
        self.pools.start(worker)

    def _start_turn(self, prepare, drop_oldest: bool) -> None:
        model = self.services.model
        if not model.ready or self.generating:
            return
        try:
            pending = prepare(model.identity)
        except EmberError as error:
            self.error.emit(error)
            return
        self._cancel = CancelToken()
        self._streaming_id = pending.assistant_message_id
        self.reload_branch()
        worker = Worker(self.services.conversation.stream_reply, pending, model.host.client(), self._cancel,
                        cancel=self._cancel, context_length=self.context_length(), drop_oldest=drop_oldest)
        worker.signals.progress.connect(self._on_event)
        worker.signals.error.connect(self._on_stream_error)
        worker.signals.finished.connect(self._on_stream_finished)
        self.generating_changed.emit(True)
        self._flush_timer.start()
        self.pools.start(worker, long=True)

    def _on_event(self, event: TokenEvent) -> None:
        if event.stats is not None:
            self.reply_finished.emit(event.stats)
        elif event.text:
            self._buffer.append(event.text)

    def _flush(self) -> None:
        if self._buffer and self._streaming_id is not None:
            text = "".join(self._buffer)
            self._buffer.clear()
            self.text_arrived.emit(self._streaming_id, text)

    def _on_stream_error(self, error: EmberError) -> None:
        if isinstance(error, ContextOverflow):
            self.overflow.emit(error.budget)
        self.error.emit(error)

    def _on_stream_finished(self) -> None:
        self._flush()
        self._flush_timer.stop()
        self._cancel = None
        self._streaming_id = None
        self.generating_changed.emit(False)
        self.reload_branch()
        self.sessions_changed.emit()

    # --- context budget -----------------------------------------------------------------------
    def request_budget(self, draft: str) -> None:
        """Count how the context is spent with this draft (debounced by the view)."""
        model = self.services.model
        if not model.ready or self.session_id is None:
            self.budget_changed.emit(None)
            return
        session = self.session()
        messages = to_host_messages(session.system_prompt, self.chats.branch(self.session_id))
        if draft.strip():
            messages.append({"role": "user", "content": draft})
        worker = Worker(measure_budget, model.host.client(), messages, Sampling.from_dict(session.sampling).max_tokens,
                        self.context_length())
        worker.signals.result.connect(self.budget_changed)
        self.pools.start(worker)

    # --- export / import ----------------------------------------------------------------------
    def export(self, path: Path) -> Path | None:
        if self.session_id is None:
            self.error.emit(InvalidInput("There is no chat to export.", "Select a chat first."))
            return None
        return self._guard(lambda: export.write_export(self.chats, self.session_id, Path(path)))

    def import_file(self, path: Path) -> int | None:
        session_id = self._guard(lambda: export.import_json(self.chats, Path(path)))
        if session_id is not None:
            self.sessions_changed.emit()
            self.select(session_id)
        return session_id

    def _guard(self, action):
        try:
            return action()
        except EmberError as error:
            self.error.emit(error)
            return None
