"""Token counts from the embedding model's own tokenizer, for the chunker's budgets.

The embedding host is llama-cpp-python's server app, which serves `/extras/tokenize/count` (one text
per request) beside Ember's routes; `HostTokenCounter` asks it once per text through
`HostClient.count_text_tokens`, each time on a new connection (as every HostClient request): on a kept-alive one each answer took 43 ms (most likely Nagle's algorithm on the
server's writes meeting the client's delayed ACK; TCP_NODELAY on our side did not help), on a new
one 1.3 ms (measured on the MiniLM test host). A count
is what the model adds to a text minus its own special tokens ([CLS] ... [SEP] for a BERT, measured
once on an empty text), so that the counts of two pieces add up to the count of the two joined by a
space, and a chunk of N tokens embeds as N + those few.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.jobs import CancelToken

if TYPE_CHECKING:
    from engine.runtime.client import HostClient

class HostTokenCounter:
    """`counter(texts) -> [tokens, ...]` through a running host's tokenizer; checks `cancel` between texts."""

    def __init__(self, client: HostClient, cancel: CancelToken | None = None) -> None:
        self.client = client
        self.cancel = cancel or CancelToken()
        self._specials: int | None = None

    def __call__(self, texts: Sequence[str]) -> list[int]:
        if self._specials is None:
            self._specials = self._count("")
        return [max(0, self._count(text) - self._specials) for text in texts]

    def _count(self, text: str) -> int:
        return self.client.count_text_tokens(text, self.cancel)
