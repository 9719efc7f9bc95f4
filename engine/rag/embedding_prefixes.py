"""The words some embedding models want before a text: one for a question, another for a passage.

Models trained with such prefixes (E5: "query: " / "passage: ", Nomic: "search_query: " /
"search_document: ", EmbeddingGemma: a task line) retrieve worse without them. The family is
recognised from the file name; a model Ember does not know gets none (MiniLM, BGE and GTE want none
for passages either). Granite Embedding, the recommended default, is trained without prefixes; it is
named here so that no later family can match its file name by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Prefixes:
    query: str = ""
    document: str = ""


# (words in the lower-cased file name, prefixes), first match wins
FAMILIES: tuple[tuple[tuple[str, ...], Prefixes], ...] = (
    (("granite-embedding",), Prefixes()),
    (("embeddinggemma",), Prefixes("task: search result | query: ", "title: none | text: ")),
    (("e5-",), Prefixes("query: ", "passage: ")),
    (("nomic-embed",), Prefixes("search_query: ", "search_document: ")),
)


def prefixes_for(model_path: str | Path | None) -> Prefixes:
    name = Path(model_path).name.lower() if model_path else ""
    for words, prefixes in FAMILIES:
        if all(word in name for word in words):
            return prefixes
    return Prefixes()
