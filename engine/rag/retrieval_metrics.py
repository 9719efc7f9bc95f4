"""Retrieval figures from ranks: recall@k and mean reciprocal rank.

A rank is where a question's right chunk came in a result list (1 = first), or None when it was not
in the list at all. Both figures are means over all questions, so a question whose chunk was not found
counts as a miss (reciprocal rank 0), never as left out. The MRR is cut at the list's length (MRR@10
for a list of 10): a chunk below that counts as not found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence


def first_rank(items: Iterable, is_right: Callable[[object], bool]) -> int | None:
    """The 1-based position of the first right item, or None."""
    return next((rank for rank, item in enumerate(items, start=1) if is_right(item)), None)


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """The share of questions whose chunk came in the first k (0.0 for no questions)."""
    if not ranks:
        return 0.0
    return sum(1 for rank in ranks if rank is not None and rank <= k) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    """The mean of 1 / rank, a miss counting 0 (0.0 for no questions)."""
    if not ranks:
        return 0.0
    return sum(1 / rank for rank in ranks if rank is not None) / len(ranks)
