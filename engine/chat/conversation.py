"""Chat turns: send, regenerate and edit, saving the reply while it streams.

A turn has three steps. `request_*` reads what the turn is made of (a TurnRequest; quick SQL), and
engine.chat.turn.assemble_turn builds and counts its messages (on a worker: it asks the host).
`prepare_*` writes the new messages (a quick SQL insert) and returns a PendingReply. `stream_reply`
runs in a worker: it sends the assembled messages and saves the partial text on its own connection
at most every SAVE_INTERVAL_S, so a crash loses at most that much; on the next start
`recover_streaming` marks such a row `interrupted`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.chat.turn import TurnRequest
from engine.errors import EmberError, InvalidInput
from engine.jobs import CancelToken, GenerationStats, TokenEvent
from engine.runtime.sampling import Sampling
from engine.store.chats import ChatRepository, Message, Provenance
from engine.store.db import connect

SAVE_INTERVAL_S = 0.5
AUTO_TITLE = "New chat"


@dataclass(frozen=True)
class ModelIdentity:
    """What provenance records about the loaded model. `path`: its file; a reply saved while
    `sha256` is still None gets the hash when the library stores it for that file."""

    name: str
    sha256: str | None = None
    quantization: str | None = None
    template_hash: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class PendingReply:
    session_id: int
    assistant_message_id: int
    sampling: Sampling


class Conversation:
    """The chat operations of one Ember home. Each method opens what it needs; safe from any thread."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)

    def _repo(self) -> ChatRepository:
        return ChatRepository(connect(self.db_path, migrate=False))

    # --- step 1: what the turn is made of --------------------------------------------------------
    def request_send(self, session_id: int, text: str | None, context_length: int) -> TurnRequest:
        """A new prompt (or, with `text` None, just the chat as it is: the budget bar's question)."""
        return self._request(session_id, None, text, context_length)

    def request_regenerate(self, session_id: int, message_id: int, context_length: int) -> TurnRequest:
        """A new reply to the prompt above `message_id` (an assistant message), or to `message_id` (a prompt)."""
        return self._request(session_id, message_id, None, context_length)

    def request_edit(self, session_id: int, message_id: int, text: str, context_length: int) -> TurnRequest:
        """An edited prompt sent in place of `message_id`: the history stops before it."""
        return self._request(session_id, message_id, text, context_length)

    def _request(self, session_id: int, message_id: int | None, draft: str | None,
                 context_length: int) -> TurnRequest:
        repo = self._repo()
        try:
            session = repo.get_session(session_id)
            branch = repo.branch(session_id)
            if message_id is not None:
                branch = _history_before(branch, repo.get_message(message_id), editing=draft is not None)
            sampling = Sampling.from_dict(session.sampling)
            return TurnRequest(session.system_prompt, branch, draft, sampling.max_tokens, context_length,
                               adapter_path=session.adapter_path, adapter_scale=session.adapter_scale)
        finally:
            repo.conn.close()

    # --- step 2: write the turn ---------------------------------------------------------------
    def prepare_send(self, session_id: int, text: str, model: ModelIdentity) -> PendingReply:
        if not text.strip():
            raise InvalidInput("The message is empty.", "Type something to send.")
        repo = self._repo()
        try:
            session = repo.get_session(session_id)
            if session.title == AUTO_TITLE and not repo.branch(session_id):
                repo.update_session(session_id, title=_title_from(text))
            user = repo.add_message(session_id, session.current_leaf_id, "user", text)
            return self._prepare_reply(repo, session_id, user.id, model)
        finally:
            repo.conn.close()

    def prepare_regenerate(self, session_id: int, message_id: int, model: ModelIdentity) -> PendingReply:
        """A new reply beside an assistant message (or under a user message), keeping the old one as a branch."""
        repo = self._repo()
        try:
            message = repo.get_message(message_id)
            parent_id = message.parent_id if message.role == "assistant" else message.id
            if parent_id is None:
                raise InvalidInput("There is no prompt to answer again.")
            return self._prepare_reply(repo, session_id, parent_id, model)
        finally:
            repo.conn.close()

    def prepare_edit(self, session_id: int, message_id: int, new_text: str, model: ModelIdentity) -> PendingReply:
        """The edited prompt becomes a sibling of the original (a new branch); both are kept."""
        if not new_text.strip():
            raise InvalidInput("The message is empty.", "Type something to send.")
        repo = self._repo()
        try:
            original = repo.get_message(message_id)
            if original.role != "user":
                raise InvalidInput("Only your own messages can be edited and sent again.")
            user = repo.add_message(session_id, original.parent_id, "user", new_text)
            return self._prepare_reply(repo, session_id, user.id, model)
        finally:
            repo.conn.close()

    def _prepare_reply(self, repo: ChatRepository, session_id: int, parent_id: int,
                       model: ModelIdentity) -> PendingReply:
        session = repo.get_session(session_id)
        sampling = Sampling.from_dict(session.sampling)
        assistant = repo.add_message(
            session_id, parent_id, "assistant", "", status="streaming",
            provenance=Provenance(model_name=model.name, model_sha256=model.sha256, model_path=model.path,
                                  quantization=model.quantization, template_hash=model.template_hash,
                                  sampling=sampling.to_dict(), seed=sampling.seed,
                                  adapter_path=session.adapter_path,
                                  adapter_scale=session.adapter_scale if session.adapter_path else None),
        )
        return PendingReply(session_id, assistant.id, sampling)

    def discard(self, pending: PendingReply) -> None:
        """Remove a reply that never started (its turn was stopped between writing and streaming)."""
        repo = self._repo()
        try:
            repo.delete_message(pending.assistant_message_id)
        finally:
            repo.conn.close()

    # --- step 3: stream it --------------------------------------------------------------------
    def stream_reply(self, pending: PendingReply, client, messages: list[dict],
                     cancel: CancelToken | None = None) -> Iterator[TokenEvent]:
        """Stream the reply to `messages` (an AssembledTurn's, built for this turn) and save as it goes."""
        cancel = cancel or CancelToken()
        repo = self._repo()
        parts: list[str] = []
        last_save = time.monotonic()
        stats: GenerationStats | None = None
        try:
            for event in client.stream_chat(messages, pending.sampling, cancel):
                if event.stats is not None:
                    stats = event.stats
                    break
                parts.append(event.text)
                yield event
                now = time.monotonic()
                if now - last_save >= SAVE_INTERVAL_S:
                    repo.update_message(pending.assistant_message_id, content="".join(parts))
                    last_save = now
        except EmberError as error:
            repo.update_message(pending.assistant_message_id, content="".join(parts), status="error",
                                error=error.message)
            raise
        except BaseException:  # the consumer stopped early, or the process is going down
            repo.update_message(pending.assistant_message_id, content="".join(parts), status="interrupted")
            raise
        else:
            status = {"cancelled": "cancelled", "error": "error"}.get(stats.stop_reason if stats else "", "complete")
            # saved before the final event is handed on, so a consumer that stops there loses nothing
            repo.update_message(pending.assistant_message_id, content="".join(parts), status=status,
                                stats=stats, error=stats.error if stats else None,
                                seed=stats.seed if stats else None)
        finally:
            repo.conn.close()
        if stats is not None:
            yield TokenEvent(stats=stats)


def _history_before(branch: list[Message], message: Message, editing: bool) -> list[Message]:
    """The shown branch up to the prompt a regenerated or edited reply answers.

    Regenerating an assistant message answers its prompt again (the history ends with that prompt);
    regenerating a prompt answers it; editing a prompt replaces it (the history stops before it)."""
    ids = [m.id for m in branch]
    if message.id not in ids:
        return branch
    cut = branch[: ids.index(message.id) + 1]
    if cut and cut[-1].role == "assistant":
        cut = cut[:-1]
    if editing and cut and cut[-1].role == "user":
        cut = cut[:-1]
    return cut


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line[:48] + ("…" if len(line) > 48 else "")
