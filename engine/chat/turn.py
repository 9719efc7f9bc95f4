"""The one place a turn's prompt is built: system prompt, history, retrieved documents, the draft,
and the reply reserve, returned as the messages to send together with their budget segments.

Whatever counts the context (the budget bar, the overflow question) and whatever streams the reply
use the same `AssembledTurn`, so the budget the user sees is the budget of the prompt the model gets.
Counting asks the host (it renders the chat template) and takes the turn's cancel token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from engine.chat.budget import ContextBudget, ContextOverflow, reply_reserve
from engine.jobs import CancelToken
from engine.store.chats import Message

SOURCES_HEADER = "Answer from these sources when they are relevant, and cite them as [1], [2]:"


@dataclass(frozen=True)
class TurnRequest:
    """What a turn is made of, before anything is counted or written.

    `history`: the shown branch that the reply continues (for a regenerated reply it ends with the
    user's prompt). `draft`: the new user text (send, edit), None when regenerating.
    `documents`: retrieved text blocks, numbered in order for citations."""

    system_prompt: str
    history: Sequence[Message]
    draft: str | None
    max_tokens: int
    context_length: int
    documents: Sequence[str] = field(default_factory=tuple)
    adapter_path: str | None = None  # the chat's LoRA adapter, put on the model before the turn is counted
    adapter_scale: float = 1.0


@dataclass(frozen=True)
class AssembledTurn:
    messages: list[dict]
    budget: ContextBudget


def sources_block(documents: Sequence[str]) -> str:
    return "\n\n".join([SOURCES_HEADER] + [f"[{i}] {text}" for i, text in enumerate(documents, start=1)])


def build_messages(system_prompt: str, history: Sequence[Message], draft: str | None,
                   documents: Sequence[str] = ()) -> list[dict]:
    """System prompt first, then the conversation, then the draft; retrieved documents go at the start
    of the last user message (the earlier turns stay a cached prefix for the model)."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    messages += [{"role": m.role, "content": m.content} for m in history if m.role in ("user", "assistant")]
    if draft is not None:
        messages.append({"role": "user", "content": draft})
    if documents:
        last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
        if last_user is not None:
            question = messages[last_user]["content"]
            messages[last_user] = {"role": "user", "content": f"{sources_block(documents)}\n\nQuestion: {question}"}
    return messages


def count_system(counter, messages: list[dict], cancel: CancelToken | None = None) -> int:
    """The system prompt's tokens as the host renders it alone (0 without one)."""
    system = [m for m in messages if m["role"] == "system"]
    return counter.count_tokens(system, cancel=cancel) if system else 0


def measure(counter, messages: list[dict], system_tokens: int, documents_tokens: int, max_tokens: int,
            context_length: int, cancel: CancelToken | None = None) -> ContextBudget:
    """The budget of `messages` as the host counts them, given the system prompt's own count."""
    total = counter.count_tokens(messages, cancel=cancel) if messages else 0
    return ContextBudget(context_length, system_tokens, max(0, total - system_tokens - documents_tokens),
                         reply_reserve(max_tokens, context_length), documents_tokens)


def assemble_turn(counter, request: TurnRequest, *, drop_oldest: bool = False,
                  cancel: CancelToken | None = None) -> AssembledTurn:
    """Build and count the turn. If it overflows and the user has not chosen to drop the oldest turns,
    the returned budget says so (the caller asks); with `drop_oldest`, the oldest messages are left out
    (starting on a user turn, the system prompt and the newest prompt always kept) until it fits, and
    ContextOverflow is raised only if even the newest prompt alone does not fit."""
    history = list(request.history)
    documents_tokens = _documents_tokens(counter, request, history, cancel)
    messages = build_messages(request.system_prompt, history, request.draft, request.documents)
    system_tokens = count_system(counter, messages, cancel)  # the same however many old turns are dropped
    budget = measure(counter, messages, system_tokens, documents_tokens, request.max_tokens,
                     request.context_length, cancel)
    if not budget.overflows or not drop_oldest:
        return AssembledTurn(messages, budget)
    dropped = 0
    while budget.overflows and _droppable(history, request.draft):
        history, cut = _drop_oldest_turn(history)
        dropped += cut
        messages = build_messages(request.system_prompt, history, request.draft, request.documents)
        budget = measure(counter, messages, system_tokens, documents_tokens, request.max_tokens,
                         request.context_length, cancel)
    budget = replace(budget, dropped_messages=dropped)
    if budget.overflows:
        raise ContextOverflow(budget)
    return AssembledTurn(messages, budget)


def _documents_tokens(counter, request: TurnRequest, history: list[Message], cancel) -> int:
    """What the documents add: the prompt counted with and without them (0 without documents)."""
    if not request.documents:
        return 0
    with_docs = build_messages(request.system_prompt, history, request.draft, request.documents)
    without = build_messages(request.system_prompt, history, request.draft)
    return max(0, counter.count_tokens(with_docs, cancel=cancel) - counter.count_tokens(without, cancel=cancel))


def _droppable(history: list[Message], draft: str | None) -> bool:
    """Whether an older turn is left to drop: the newest prompt (the draft, or the history's last user
    message when regenerating) always stays."""
    chat = [m for m in history if m.role in ("user", "assistant")]
    return len(chat) > (0 if draft is not None else 1)


def _drop_oldest_turn(history: list[Message]) -> tuple[list[Message], int]:
    """Leave out the oldest message, then any replies before the next user message (a turn starts on a user)."""
    rest = history[1:]
    while rest and rest[0].role != "user":
        rest = rest[1:]
    if not rest and history and history[-1].role == "user":
        rest = [history[-1]]
    return rest, len(history) - len(rest)
