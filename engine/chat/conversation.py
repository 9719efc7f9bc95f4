"""Chat turns: send, regenerate and edit, saving the reply while it streams.

A turn has two steps. `prepare_*` writes the new messages (a quick SQL insert: the caller may be the
UI thread) and returns a PendingReply. `stream_reply` runs in a worker: it asks the host for the reply
and saves the partial text on its own connection at most every SAVE_INTERVAL_S, so a crash loses at
most that much; on the next start `recover_streaming` marks such a row `interrupted`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.chat.budget import ContextOverflow, fit_history
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
    history: list[dict]  # the messages sent to the model, system prompt first
    sampling: Sampling


def to_host_messages(system_prompt: str, branch: list[Message]) -> list[dict]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    messages += [{"role": m.role, "content": m.content} for m in branch if m.role in ("user", "assistant")]
    return messages


class Conversation:
    """The chat operations of one Ember home. Each method opens what it needs; safe from any thread."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)

    def _repo(self) -> ChatRepository:
        return ChatRepository(connect(self.db_path, migrate=False))

    # --- step 1: write the turn ---------------------------------------------------------------
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
        history = to_host_messages(session.system_prompt, repo.branch(session_id, parent_id))
        assistant = repo.add_message(
            session_id, parent_id, "assistant", "", status="streaming",
            provenance=Provenance(model_name=model.name, model_sha256=model.sha256, model_path=model.path,
                                  quantization=model.quantization, template_hash=model.template_hash,
                                  sampling=sampling.to_dict(), seed=sampling.seed),
        )
        return PendingReply(session_id, assistant.id, history, sampling)

    # --- step 2: stream it --------------------------------------------------------------------
    def stream_reply(self, pending: PendingReply, client, cancel: CancelToken | None = None, *,
                     context_length: int | None = None, drop_oldest: bool = False) -> Iterator[TokenEvent]:
        """Stream from the host and save as it goes. Without `drop_oldest`, a history over the context
        raises ContextOverflow (nothing is cut without the user's choice)."""
        cancel = cancel or CancelToken()
        repo = self._repo()
        parts: list[str] = []
        last_save = time.monotonic()
        stats: GenerationStats | None = None
        try:
            history = pending.history
            if context_length:
                history = fit_history(client, history, pending.sampling.max_tokens, context_length,
                                      drop_oldest=drop_oldest)
            for event in client.stream_chat(history, pending.sampling, cancel):
                if event.stats is not None:
                    stats = event.stats
                    break
                parts.append(event.text)
                yield event
                now = time.monotonic()
                if now - last_save >= SAVE_INTERVAL_S:
                    repo.update_message(pending.assistant_message_id, content="".join(parts))
                    last_save = now
        except ContextOverflow:
            repo.delete_message(pending.assistant_message_id)
            raise
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


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line[:48] + ("…" if len(line) > 48 else "")
