"""The context budget: how the model's context is spent, and what happens when a chat outgrows it.

Token counts come from the host (it renders the template); the app never guesses them. The one
turn assembler (engine/chat/turn.py) measures the budget on exactly the messages it sends. Nothing
is cut silently: an overflow is a ContextOverflow unless the user chose to drop the oldest turns,
and the system prompt is never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidInput


class ContextOverflow(InvalidInput):
    default_hint = "Drop the oldest turns, shorten the message, lower max tokens or start a new chat."

    def __init__(self, budget: ContextBudget) -> None:
        super().__init__(
            f"This chat needs {budget.needed} tokens but the context holds {budget.context_length}."
        )
        self.budget = budget


@dataclass(frozen=True)
class ContextBudget:
    """The segments of one prompt, in tokens. Every segment is measured on the messages that are sent."""

    context_length: int
    system_tokens: int
    history_tokens: int  # the conversation, without the system prompt (includes the draft if given)
    reserve_tokens: int  # kept free for the reply (max tokens)
    documents_tokens: int = 0  # retrieved document text placed in the prompt
    dropped_messages: int = 0  # oldest messages left out because the user chose so

    @property
    def needed(self) -> int:
        return self.system_tokens + self.documents_tokens + self.history_tokens + self.reserve_tokens

    @property
    def free(self) -> int:
        return self.context_length - self.needed

    @property
    def overflows(self) -> bool:
        return self.needed > self.context_length


def reply_reserve(max_tokens: int, context_length: int) -> int:
    """Room kept for the reply: max tokens, but never more than a quarter of the context (a reply that
    needs more ends with stop reason 'length' instead of pushing the chat out)."""
    return max(1, min(max_tokens, context_length // 4))
