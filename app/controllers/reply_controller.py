"""Replies: send, regenerate, edit and resend, stop; the context budget; the overflow question.

A turn has one state and one cancel token from the click to the last token:
    counting → (asking, when the chat no longer fits) → streaming → done
When the chat has document collections, counting starts with retrieval (engine.rag.grounding, once
per turn) and fits the sources into the context; they are saved with the reply for its citations.
Counting runs the engine's one turn assembler (engine.chat.turn) on a worker; when the chat
overflows, `overflow` asks the view and nothing is written or cut until the user chooses. Then the
turn's messages are written (quick SQL) and the reply streams on its own thread, into the chat the
turn was asked in; the text is handed to the view once per frame (FRAME_MS), not once per token.
Esc (stop) ends the turn in whichever state it is; while a turn is active the chat cannot be
switched or deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from app.controllers.chat_controller import ChatController
from app.controllers.runtime_controller import RuntimeController
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.chat.budget import ContextOverflow
from engine.chat.conversation import ModelIdentity, PendingReply
from engine.chat.turn import AssembledTurn, TurnRequest, assemble_turn
from engine.errors import Cancelled, EmberError, HostDied, InvalidInput
from engine.jobs import CancelToken, GenerationStats, Progress, TokenEvent
from engine.runtime.fit import MIN_TOKENS_TO_LEARN, learn_from_reply
from engine.store.chat_documents_repo import ChatDocuments, ChatDocumentsRepository
from engine.store.models_repo import ModelRepository

if TYPE_CHECKING:
    from engine.rag.grounding import Grounding

FRAME_MS = 25
NO_MODEL = EmberError("No model is loaded.", "Pick a model at the top of the chat and press Load.")
TURN_STATES = ("counting", "asking", "streaming", "done")


@dataclass
class Turn:
    """One turn, from the click to the last token."""

    session_id: int
    request: TurnRequest
    prepare: Callable[[ModelIdentity], PendingReply]  # writes the turn's messages
    cancel: CancelToken = field(default_factory=CancelToken)
    state: str = "counting"
    reply_id: int | None = None
    documents: ChatDocuments = field(default_factory=ChatDocuments)
    grounding: Grounding | None = None  # what retrieval found (once per turn), when the chat has documents


def use_chat_adapter(host, request: TurnRequest, cancel: CancelToken) -> None:
    """Put the chat's LoRA adapter (or none) on the loaded model before its prompt is counted; a refusal
    says what to do instead of leaving the reply to come from the wrong weights."""
    try:
        host.use_adapter(request.adapter_path, request.adapter_scale, cancel)
    except InvalidInput as error:
        raise InvalidInput(f"This chat's adapter could not be used: {error.message}",
                           "Pick another adapter for this chat in its settings (or none), or load the model "
                           "it was trained on.") from error


class ReplyController(QObject):
    generating_changed = Signal(bool)  # a turn started (True) or ended (False), whatever its state
    turn_started = Signal(int)  # the new reply's message id (the composer may clear now)
    text_arrived = Signal(int, str)  # message id, a frame's worth of text
    reply_finished = Signal(object)  # GenerationStats
    budget_changed = Signal(object)  # ContextBudget | None
    overflow = Signal(object)  # ContextBudget: ask whether to drop the oldest turns
    host_lost = Signal()
    error = Signal(object)  # EmberError
    notice = Signal(str)  # something worth saying once (not an error)
    activity = Signal(str)  # what the turn is doing before the reply starts ("Searching your documents…")

    def __init__(self, services: Services, runner: WorkerRunner, chat: ChatController,
                 runtime: RuntimeController, parent=None) -> None:
        super().__init__(parent)
        self.services, self.runner, self.chat, self.runtime = services, runner, chat, runtime
        self.chats = services.chats
        self.turn: Turn | None = None
        self._buffer: list[str] = []
        self._counting = False
        self._next_draft: str | None = None
        self._told_system_moved: set[str] = set()  # model files whose template has no system role, said once
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FRAME_MS)
        self._flush_timer.timeout.connect(self._flush)
        chat.busy = lambda: self.generating

    @property
    def generating(self) -> bool:
        """A turn is active (counting, asking or streaming)."""
        return self.turn is not None

    def context_length(self) -> int:
        """The context the reply gets: the chat's setting, at most what the loaded model was given."""
        model = self.services.chat_model
        loaded = model.context_length if model else 4096
        session = self.chat.session()
        wanted = session.context_length if session and session.context_length else loaded
        return min(wanted, loaded)

    # --- turns ------------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        if not text.strip():
            self.error.emit(InvalidInput("The message is empty.", "Type something to send."))
            return
        if self.services.chat_model is None:
            self.error.emit(NO_MODEL)
            return
        if self.generating:
            return
        if self.chat.session_id is None:
            self.chat.new_session()
        sid = self.chat.session_id
        conversation = self.services.conversation
        self._begin(sid, lambda: conversation.request_send(sid, text, self.context_length()),
                    lambda model: conversation.prepare_send(sid, text, model))

    def regenerate(self, message_id: int) -> None:
        """A new version of a reply (or a reply to a prompt that has none)."""
        sid, conversation = self.chat.session_id, self.services.conversation
        self._begin(sid, lambda: conversation.request_regenerate(sid, message_id, self.context_length()),
                    lambda model: conversation.prepare_regenerate(sid, message_id, model))

    def edit(self, message_id: int, text: str) -> None:
        """Send an edited prompt as a new version beside the original (a branch)."""
        sid, conversation = self.chat.session_id, self.services.conversation
        self._begin(sid, lambda: conversation.request_edit(sid, message_id, text, self.context_length()),
                    lambda model: conversation.prepare_edit(sid, message_id, text, model))

    def stop(self) -> None:
        """End the turn in whichever state it is (counting, the overflow question, streaming)."""
        turn = self.turn
        if turn is None:
            return
        turn.cancel.cancel()
        if turn.state == "asking":
            self._end_turn()

    def answer_overflow(self, drop_oldest: bool) -> None:
        """The user's choice after `overflow`: drop the oldest turns for this reply, or send nothing."""
        turn = self.turn
        if turn is None or turn.state != "asking":
            return
        if not drop_oldest:
            self._end_turn()
            return
        turn.state = "counting"
        self._count(turn, drop_oldest=True)

    def _begin(self, session_id: int | None, request: Callable[[], TurnRequest], prepare) -> None:
        if self.generating or session_id is None:
            return
        model = self.services.chat_model
        if model is None:
            self.error.emit(NO_MODEL)
            return
        try:
            turn = Turn(session_id, request(), prepare,
                        documents=ChatDocumentsRepository(self.services.conn).settings(session_id))
        except EmberError as error:
            self.error.emit(error)
            return
        self.turn = turn
        self.generating_changed.emit(True)
        self._count(turn, drop_oldest=False)

    def _count(self, turn: Turn, drop_oldest: bool) -> None:
        client = self.services.chat_model.host.client() if self.services.chat_model else None
        if client is None:
            self.error.emit(NO_MODEL)
            self._end_turn()
            return
        retriever, grounding = self.services.retriever, turn.grounding
        host = self.services.chat_model.host

        def count(cancel: CancelToken):
            """On a worker: the chat's adapter on the model, retrieval (the first time, if the chat has
            documents), then assemble and count."""
            from engine.rag.grounding import question_of  # numpy and the search: not needed to paint

            use_chat_adapter(host, turn.request, cancel)
            found = grounding
            if found is None and turn.documents.active:
                found = yield from retriever.retrieve(turn.documents, question_of(turn.request), cancel)
            if found is None:
                return assemble_turn(client, turn.request, drop_oldest=drop_oldest, cancel=cancel), None
            return retriever.fit(client, turn.request, found, drop_oldest=drop_oldest, cancel=cancel)

        def counted(value: tuple[AssembledTurn, Grounding | None]) -> None:
            if self.turn is not turn:
                return
            if turn.cancel.cancelled:  # stopped just as the count came back
                self._end_turn()
                return
            assembled, found = value
            if found is not None and turn.grounding is None:
                for note in found.notes:
                    self.notice.emit(note)
            turn.grounding = found
            self.budget_changed.emit(assembled.budget)
            if assembled.budget.overflows:
                turn.state = "asking"
                self.overflow.emit(assembled.budget)
            else:
                self._stream(turn, assembled)

        def failed(error: EmberError) -> None:
            if self.turn is turn:
                self._end_turn()
                self._on_error(error, turn)

        def progress(event: Progress) -> None:
            if self.turn is turn and event.message:
                self.activity.emit(event.message)

        worker = Worker(count, turn.cancel, cancel=turn.cancel, name="count-tokens")
        worker.result.connect(counted)
        worker.error.connect(failed)
        worker.progress.connect(progress)
        # retrieval may start the embedding model (seconds): its own thread, not the shared pool
        self.runner.start(worker, long=turn.documents.active and grounding is None)

    def _stream(self, turn: Turn, assembled: AssembledTurn) -> None:
        model = self.services.chat_model
        if model is None:
            self.error.emit(NO_MODEL)
            self._end_turn()
            return
        identity = ModelIdentity(model.name, model.sha256, model.quantization, model.template_hash, path=model.path)
        try:
            pending = turn.prepare(identity)
        except EmberError as error:
            self._end_turn()
            self.error.emit(error)
            return
        turn.state, turn.reply_id = "streaming", pending.assistant_message_id
        if turn.grounding is not None:
            try:  # quick SQL: the reply's sources, before the reply is shown with its citations
                ChatDocumentsRepository(self.services.conn).save_retrieval(
                    pending.assistant_message_id, turn.grounding.query, turn.grounding.mode, turn.grounding.k,
                    turn.grounding.seconds, turn.grounding.sources)
            except EmberError as error:
                self.error.emit(error)
        self._say_once_if_system_moved(turn, model)
        worker = Worker(self.services.conversation.stream_reply, pending, model.host.client(), assembled.messages,
                        turn.cancel, cancel=turn.cancel, name="generate")
        worker.progress.connect(self._on_event)
        worker.error.connect(lambda error: self._on_error(error, turn))
        worker.finished.connect(lambda: self._on_finished(turn))
        if turn.session_id == self.chat.session_id:
            self.chat.show_new_reply(pending.assistant_message_id)
        self.chat.refresh_sessions()
        self.turn_started.emit(pending.assistant_message_id)
        self._flush_timer.start()
        self.runner.start(worker, long=True)

    def _say_once_if_system_moved(self, turn: Turn, model) -> None:
        """A template without a system role gets the system prompt in the first user turn (the host does
        it); the user is told the first time it happens with that model."""
        info = model.host.info
        if turn.request.system_prompt.strip() and info.get("system_in_user") \
                and model.path not in self._told_system_moved:
            self._told_system_moved.add(model.path)
            self.notice.emit(info.get("system_notice") or "This model has no system role; your system prompt "
                             "goes at the start of your first message.")

    def _end_turn(self) -> None:
        self.turn = None
        self._flush_timer.stop()
        self.generating_changed.emit(False)

    def _on_event(self, event: TokenEvent) -> None:
        if event.stats is not None:
            self._flush()
            self.reply_finished.emit(event.stats)
            self._learn_speed(event.stats)
        elif event.text:
            self._buffer.append(event.text)

    def _learn_speed(self, stats: GenerationStats) -> None:
        """Teach the Models page's speed estimate what this reply measured (a short worker)."""
        model = self.services.chat_model
        if model is None or model.host.model_info is None or stats.completion_tokens < MIN_TOKENS_TO_LEARN:
            return
        host = model.host
        args = (model.path, host.model_info, int(host.info.get("gpu_layers") or 0), model.context_length,
                stats.completion_tokens, stats.tokens_per_s)
        # a failure is only logged: an estimate that stays uncalibrated is not worth a dialog
        self.runner.start(Worker(self._learn_speed_job, *args))

    def _learn_speed_job(self, *args) -> None:
        conn = self.services.connect()
        try:
            learn_from_reply(self.services.paths, ModelRepository(conn), *args)
        finally:
            conn.close()

    def _flush(self) -> None:
        turn = self.turn
        if self._buffer and turn is not None and turn.reply_id is not None:
            text = "".join(self._buffer)
            self._buffer.clear()
            if turn.session_id == self.chat.session_id:
                self.text_arrived.emit(turn.reply_id, text)

    def _on_error(self, error: EmberError, turn: Turn) -> None:
        if isinstance(error, Cancelled) and turn.cancel.cancelled:
            return  # the user stopped it
        if isinstance(error, ContextOverflow):
            self.budget_changed.emit(error.budget)
        self.error.emit(error)
        if isinstance(error, HostDied) or self.services.chat_model is None:
            self.host_lost.emit()

    def _on_finished(self, turn: Turn) -> None:
        self._flush()
        self._buffer.clear()
        if self.turn is turn:
            self._end_turn()
        if turn.session_id != self.chat.session_id:
            return
        try:
            self.chat.refresh_message(turn.reply_id)  # the saved text, status and stats, in place
        except EmberError:  # gone meanwhile
            self.chat.reload_branch()

    # --- the context budget, as the user types ----------------------------------------------------
    def request_budget(self, draft: str = "") -> None:
        """Count how the context is spent with this draft (the view debounces; one count at a time)."""
        if self._counting:
            self._next_draft = draft
            return
        model = self.services.chat_model
        session = self.chat.session()
        if model is None or session is None:
            self.budget_changed.emit(None)
            return
        try:
            request = self.services.conversation.request_send(session.id, draft if draft.strip() else None,
                                                              self.context_length())
        except EmberError:
            self.budget_changed.emit(None)
            return
        self._counting = True
        self.runner.run(lambda: assemble_turn(model.host.client(), request).budget, name="count-tokens",
                        on_result=self.budget_changed, on_error=lambda _e: None, on_finished=self._counted)

    def _counted(self) -> None:
        self._counting = False
        if self._next_draft is not None:
            draft, self._next_draft = self._next_draft, None
            self.request_budget(draft)
