"""The context budget: how the model's context is spent, and what to do when a chat outgrows it.

Token counts come from the host (it renders the template); the app never guesses them. Nothing is
cut silently: `fit_history` raises ContextOverflow unless the user chose to drop the oldest turns,
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
    context_length: int
    system_tokens: int
    history_tokens: int  # the conversation, without the system prompt (includes the draft if given)
    reserve_tokens: int  # kept free for the reply (max tokens)

    @property
    def needed(self) -> int:
        return self.system_tokens + self.history_tokens + self.reserve_tokens

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


def measure_budget(client, messages: list[dict], reserve_tokens: int, context_length: int) -> ContextBudget:
    """Count the system prompt and the rest as the host renders them (`reserve_tokens` is the max tokens)."""
    reserve_tokens = reply_reserve(reserve_tokens, context_length)
    system = [m for m in messages if m["role"] == "system"]
    total = client.count_tokens(messages) if messages else 0
    system_tokens = client.count_tokens(system) if system else 0
    return ContextBudget(context_length, system_tokens, max(0, total - system_tokens), reserve_tokens)


def fit_history(client, messages: list[dict], reserve_tokens: int, context_length: int, *,
                drop_oldest: bool) -> list[dict]:
    """The messages to send: all of them if they fit; else the oldest turns dropped if the user chose so."""
    budget = measure_budget(client, messages, reserve_tokens, context_length)
    if not budget.overflows:
        return messages
    if not drop_oldest:
        raise ContextOverflow(budget)
    system = [m for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"]
    while len(rest) > 1:
        rest = rest[1:]
        while len(rest) > 1 and rest[0]["role"] != "user":  # start on a user turn
            rest = rest[1:]
        if not measure_budget(client, system + rest, reserve_tokens, context_length).overflows:
            return system + rest
    trimmed = system + rest
    if measure_budget(client, trimmed, reserve_tokens, context_length).overflows:
        raise ContextOverflow(measure_budget(client, trimmed, reserve_tokens, context_length))
    return trimmed
