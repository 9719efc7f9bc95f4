"""Replies: send, regenerate, edit and resend, stop; the context budget; the overflow question.

A turn first counts the context (a short worker). If the chat no longer fits, `overflow` asks the
view, and nothing is written or cut until the user chooses. Then the turn's messages are written
(quick SQL) and the reply streams on its own thread; the text is handed to the view once per frame
(FRAME_MS), not once per token.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from app.controllers.chat_controller import ChatController
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.chat.budget import ContextBudget, ContextOverflow, measure_budget
from engine.chat.conversation import PendingReply, to_host_messages
from engine.errors import EmberError, HostDied, InvalidInput
from engine.jobs import CancelToken, GenerationStats, TokenEvent
from engine.runtime.fit import MIN_TOKENS_TO_LEARN, learn_from_reply
from engine.runtime.sampling import Sampling
from engine.store.models_repo import ModelRepository

FRAME_MS = 25
NO_MODEL = EmberError("No model is loaded.", "Pick a model at the top of the chat and press Load.")


class ReplyController(QObject):
    generating_changed = Signal(bool)
    turn_started = Signal(int)  # the new reply's message id (the composer may clear now)
    text_arrived = Signal(int, str)  # message id, a frame's worth of text
    reply_finished = Signal(object)  # GenerationStats
    budget_changed = Signal(object)  # ContextBudget | None
    overflow = Signal(object)  # ContextBudget: ask whether to drop the oldest turns
    host_lost = Signal()
    error = Signal(object)  # EmberError

    def __init__(self, services: Services, runner: WorkerRunner, chat: ChatController, parent=None) -> None:
        super().__init__(parent)
        self.services, self.runner, self.chat = services, runner, chat
        self.chats = services.chats
        self._stream: Worker | None = None
        self._streaming_id: int | None = None
        self._buffer: list[str] = []
        self._waiting: Callable[[bool], None] | None = None  # the turn held back by an overflow question
        self._counting = False
        self._next_draft: str | None = None
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FRAME_MS)
        self._flush_timer.timeout.connect(self._flush)

    @property
    def generating(self) -> bool:
        return self._stream is not None

    def context_length(self) -> int:
        """The context the reply gets: the chat's setting, at most what the loaded model was given."""
        loaded = self.services.model.context_length or 4096
        session = self.chat.session()
        wanted = session.context_length if session and session.context_length else loaded
        return min(wanted, loaded)

    # --- turns ------------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        if not text.strip():
            self.error.emit(InvalidInput("The message is empty.", "Type something to send."))
            return
        if not self.services.model.ready:
            self.error.emit(NO_MODEL)
            return
        if self.chat.session_id is None:
            self.chat.new_session()
        sid = self.chat.session_id
        self._check_then(self.chats.branch(sid), text,
                         lambda model: self.services.conversation.prepare_send(sid, text, model))

    def regenerate(self, message_id: int) -> None:
        """A new version of a reply (or a reply to a prompt that has none)."""
        sid = self.chat.session_id
        self._check_then(self._history_before(message_id, include_user=True), None,
                         lambda model: self.services.conversation.prepare_regenerate(sid, message_id, model))

    def edit(self, message_id: int, text: str) -> None:
        """Send an edited prompt as a new version beside the original (a branch)."""
        sid = self.chat.session_id
        self._check_then(self._history_before(message_id, include_user=False), text,
                         lambda model: self.services.conversation.prepare_edit(sid, message_id, text, model))

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.cancel.cancel()

    def answer_overflow(self, drop_oldest: bool) -> None:
        """The user's choice after `overflow`: drop the oldest turns for this reply, or send nothing."""
        turn, self._waiting = self._waiting, None
        if turn is not None and drop_oldest:
            turn(True)

    def _history_before(self, message_id: int, include_user: bool):
        """The shown branch up to the prompt a regenerated or edited reply answers."""
        branch = self.chats.branch(self.chat.session_id)
        ids = [m.id for m in branch]
        if message_id not in ids:
            return branch
        cut = branch[: ids.index(message_id) + 1]
        if cut and cut[-1].role == "assistant":
            cut = cut[:-1]
        if not include_user and cut and cut[-1].role == "user":
            cut = cut[:-1]
        return cut

    def _check_then(self, history, new_text: str | None, prepare) -> None:
        """Count the context first; when it overflows, ask before anything is written or cut."""
        if self.generating or self._waiting is not None or self.chat.session_id is None:
            return
        if not self.services.model.ready:
            self.error.emit(NO_MODEL)
            return
        session = self.chat.session()
        messages = to_host_messages(session.system_prompt, history)
        if new_text is not None:
            messages.append({"role": "user", "content": new_text})
        reserve = Sampling.from_dict(session.sampling).max_tokens

        def counted(budget: ContextBudget) -> None:
            self.budget_changed.emit(budget)
            if budget.overflows:
                self._waiting = lambda drop: self._start(prepare, drop)
                self.overflow.emit(budget)
            else:
                self._start(prepare, False)

        self.runner.run(measure_budget, self.services.model.host.client(), messages, reserve,
                        self.context_length(), name="count-tokens", on_result=counted, on_error=self._on_error)

    def _start(self, prepare, drop_oldest: bool) -> None:
        model = self.services.model
        if not model.ready:
            self.error.emit(NO_MODEL)
            return
        if self.generating:
            return
        try:
            pending: PendingReply = prepare(model.identity)
        except EmberError as error:
            self.error.emit(error)
            return
        if model.identity is not None and model.identity.sha256 is None:
            model.unhashed_replies.append(pending.assistant_message_id)
        cancel = CancelToken()
        worker = Worker(self.services.conversation.stream_reply, pending, model.host.client(), cancel,
                        cancel=cancel, name="generate", context_length=self.context_length(),
                        drop_oldest=drop_oldest)
        worker.progress.connect(self._on_event)
        worker.error.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._stream, self._streaming_id = worker, pending.assistant_message_id
        self.chat.show_new_reply(pending.assistant_message_id)
        self.chat.refresh_sessions()
        self.turn_started.emit(pending.assistant_message_id)
        self.generating_changed.emit(True)
        self._flush_timer.start()
        self.runner.start(worker, long=True)

    def _on_event(self, event: TokenEvent) -> None:
        if event.stats is not None:
            self._flush()
            self.reply_finished.emit(event.stats)
            self._learn_speed(event.stats)
        elif event.text:
            self._buffer.append(event.text)

    def _learn_speed(self, stats: GenerationStats) -> None:
        """Teach the Models page's speed estimate what this reply measured (a short worker)."""
        model = self.services.model
        if not model.ready or model.host.model_info is None or stats.completion_tokens < MIN_TOKENS_TO_LEARN:
            return
        host = model.host
        args = (str(host.settings.model_path), host.model_info, int(host.info.get("gpu_layers") or 0),
                model.context_length or host.settings.context_length, stats.completion_tokens, stats.tokens_per_s)
        # a failure is only logged: an estimate that stays uncalibrated is not worth a dialog
        self.runner.start(Worker(self._learn_speed_job, *args))

    def _learn_speed_job(self, *args) -> None:
        conn = self.services.connect()
        try:
            learn_from_reply(self.services.paths, ModelRepository(conn), *args)
        finally:
            conn.close()

    def _flush(self) -> None:
        if self._buffer and self._streaming_id is not None:
            text = "".join(self._buffer)
            self._buffer.clear()
            self.text_arrived.emit(self._streaming_id, text)

    def _on_error(self, error: EmberError) -> None:
        if isinstance(error, ContextOverflow):  # the chat grew between counting and sending
            self.budget_changed.emit(error.budget)
        self.error.emit(error)
        if isinstance(error, HostDied) or not self.services.model.ready:
            self.host_lost.emit()

    def _on_finished(self) -> None:
        self._flush()
        self._flush_timer.stop()
        finished_id = self._streaming_id
        self._stream, self._streaming_id = None, None
        self.generating_changed.emit(False)
        try:
            self.chat.refresh_message(finished_id)  # the saved text, status and stats, in place
        except EmberError:  # gone (an overflow removes the reply it had started)
            self.chat.reload_branch()

    # --- the context budget, as the user types ----------------------------------------------------
    def request_budget(self, draft: str = "") -> None:
        """Count how the context is spent with this draft (the view debounces; one count at a time)."""
        if self._counting:
            self._next_draft = draft
            return
        model = self.services.model
        session = self.chat.session()
        if not model.ready or session is None:
            self.budget_changed.emit(None)
            return
        messages = to_host_messages(session.system_prompt, self.chats.branch(session.id))
        if draft.strip():
            messages.append({"role": "user", "content": draft})
        self._counting = True
        self.runner.run(measure_budget, model.host.client(), messages, Sampling.from_dict(session.sampling).max_tokens,
                        self.context_length(), name="count-tokens", on_result=self.budget_changed,
                        on_error=lambda _e: None, on_finished=self._counted)

    def _counted(self) -> None:
        self._counting = False
        if self._next_draft is not None:
            draft, self._next_draft = self._next_draft, None
            self.request_budget(draft)
