"""Documents in a chat turn: retrieve for the question, fit what was found into the context, and keep
a record of it for the citations and the retrieval inspector (the caller saves `Grounding.sources`
with the reply: engine/store/chat_documents_repo.py).

Retrieval runs once per turn, before the turn is counted. `fit` then hands the best sources to the
one turn assembler (engine/chat/turn.py) and, while they push the prompt past the context, leaves
out the lowest-ranked one: what the user wrote is never cut for a document, and the inspector says
which sources the budget cut. Each source goes into the prompt labelled with its file and page or
lines, so the model can cite [n] and the user can check where it looked.

Two modes: `retrieve` (the k best chunks, hybrid BM25 + vectors) and `whole` (every chunk of the
collections in reading order, for a collection small enough to fit the context).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from engine.chat.budget import ContextOverflow
from engine.chat.turn import AssembledTurn, TurnRequest, assemble_turn
from engine.errors import InvalidInput
from engine.jobs import CancelToken, Progress
from engine.rag.embedder import Embedder
from engine.rag.embedding_prefixes import prefixes_for
from engine.rag.retrieve import Hit, search
from engine.rag.vectors import VectorStore
from engine.store.chat_documents_repo import ChatDocuments, MessageSource
from engine.store.db import connect
from engine.store.documents_repo import Collection, DocumentsRepository

INSPECT_EXTRA = 5  # ranks after the k best that the inspector also shows
WHOLE_LIMIT = 400  # chunks at most in `whole` mode (a collection that big does not fit a context anyway)
CUT_BELOW_K = "below the top k"
CUT_BUDGET = "the context budget"
TOKENS_PER_EMBEDDING_TOKEN = 1.3  # chat tokenizers cut finer than BERT's WordPiece: an estimate for the first cut
LABEL_TOKENS = 12  # "[n] (file.pdf, page 3)" and the blank line


@dataclass(frozen=True)
class Grounding:
    """What retrieval gave one turn: every source in rank order (those with a number are in the prompt)."""

    query: str
    mode: str
    k: int
    seconds: float
    sources: tuple[MessageSource, ...] = ()
    notes: tuple[str, ...] = ()  # what the user should know (a collection with nothing indexed yet)

    @property
    def in_prompt(self) -> list[MessageSource]:
        return sorted((s for s in self.sources if s.number is not None), key=lambda s: s.number)

    def documents(self) -> list[str]:
        """The prompt's text blocks, in [n] order."""
        return [source_block(s) for s in self.in_prompt]


def question_of(request: TurnRequest) -> str:
    """What to search for: the new prompt, or (regenerating) the prompt the reply answers."""
    if request.draft is not None:
        return request.draft
    return next((m.content for m in reversed(request.history) if m.role == "user"), "")


def source_block(source: MessageSource) -> str:
    return f"({source.location}) {source.text}"


def _from_hit(hit: Hit, rank: int, number: int | None, kind: str | None, tokens: int | None) -> MessageSource:
    return MessageSource(rank=rank, number=number, chunk_id=hit.chunk_id, collection_id=hit.collection_id,
                         path=hit.path, kind=kind, page_start=hit.page_start, page_end=hit.page_end,
                         line_start=hit.line_start, line_end=hit.line_end, heading_path=hit.heading_path,
                         text=hit.text, score=hit.score, bm25_rank=hit.bm25_rank, vector_rank=hit.vector_rank,
                         similarity=hit.similarity, tokens=tokens,
                         cut_reason=None if number is not None else CUT_BELOW_K)


class ChatRetriever:
    """Retrieval for chat turns. One per app: it keeps the vector matrices of the collections it searched."""

    def __init__(self, db_path: Path, embedder: Embedder, vectors: VectorStore | None = None) -> None:
        self.db_path = Path(db_path)
        self.embedder = embedder
        self.vectors = vectors or VectorStore()

    # --- step 1: retrieve -----------------------------------------------------------------------
    def retrieve(self, settings: ChatDocuments, question: str, cancel: CancelToken | None = None
                 ) -> Generator[Progress, None, Grounding]:
        """The sources for a question (a slow call: it may start the embedding model). Use as
        `grounding = yield from retriever.retrieve(settings, question, cancel)`."""
        cancel = cancel or CancelToken()
        started = time.monotonic()
        conn = connect(self.db_path, migrate=False)
        try:
            repo = DocumentsRepository(conn)
            collections, notes = _usable(repo, settings.collection_ids)
            if settings.mode == "whole":
                sources = _whole(repo, collections)
            else:
                sources = yield from self._best(conn, repo, collections, question, settings.k, cancel)
        finally:
            conn.close()
        return Grounding(question, settings.mode, settings.k, time.monotonic() - started, tuple(sources),
                         tuple(notes))

    def _best(self, conn, repo: DocumentsRepository, collections: list[Collection], question: str, k: int,
              cancel: CancelToken) -> Generator[Progress, None, list[MessageSource]]:
        by_model: dict[str, list[int]] = {}
        for collection in collections:
            by_model.setdefault(collection.embedding_model_path or "", []).append(collection.id)
        hits: list[Hit] = []
        for model_path, ids in by_model.items():
            if not model_path or not Path(model_path).is_file():
                names = ", ".join(c.name for c in collections if c.id in ids)
                raise InvalidInput(f"The embedding model of {names} is missing ({model_path or 'none chosen'}).",
                                   "Choose its embedding model on the Documents page, or take the collection "
                                   "off this chat.")
            yield Progress(0, None, "", "Searching your documents…")
            client = yield from self.embedder.ensure(model_path, cancel)
            vector = client.embed([prefixes_for(model_path).query + question], cancel)[0]
            hits += search(conn, ids, question, vector, k=k + INSPECT_EXTRA, vectors=self.vectors)
        # one list: with collections of two models, by fused score (both are 1 / (60 + rank) sums)
        hits.sort(key=lambda h: -h.score)
        hits = hits[: k + INSPECT_EXTRA]
        kinds = _kinds(repo, hits)
        tokens = _tokens(repo, [h.chunk_id for h in hits])
        return [_from_hit(hit, rank, rank if rank <= k else None, kinds.get(hit.document_id), tokens.get(hit.chunk_id))
                for rank, hit in enumerate(hits, start=1)]

    # --- step 2: fit into the context ---------------------------------------------------------------
    def fit(self, counter, request: TurnRequest, grounding: Grounding, *, drop_oldest: bool = False,
            cancel: CancelToken | None = None) -> tuple[AssembledTurn, Grounding]:
        """Assemble the turn with as many of the sources as fit, best first; the ones left out are
        marked as cut by the budget. An overflow that the documents did not cause is left to the
        user's choice as in any turn (the returned budget overflows; nothing is cut)."""
        wanted = grounding.in_prompt
        if not wanted:
            return assemble_turn(counter, request, drop_oldest=drop_oldest, cancel=cancel), grounding
        bare = assemble_turn(counter, request, cancel=cancel)
        keep = _first_cut(wanted, bare.budget.free)
        while True:
            with_docs = replace(request, documents=[source_block(s) for s in keep])
            try:
                turn = assemble_turn(counter, with_docs, drop_oldest=drop_oldest, cancel=cancel)
            except ContextOverflow:
                if not keep:
                    raise
                keep = keep[:-1]
                continue
            if turn.budget.overflows and keep and not bare.budget.overflows:
                keep = keep[:-1]  # the documents pushed it over: cut them, not what the user wrote
                continue
            return turn, _mark_kept(grounding, keep)


def _usable(repo: DocumentsRepository, collection_ids: Sequence[int]) -> tuple[list[Collection], list[str]]:
    """The collections that have something indexed, and a note for each one that has not."""
    usable, notes = [], []
    for collection_id in collection_ids:
        collection = repo.get_collection(collection_id)
        if collection.embedding_dim is None:
            notes.append(f"{collection.name} has nothing indexed yet; the reply does not use it.")
        else:
            usable.append(collection)
    return usable, notes


def _whole(repo: DocumentsRepository, collections: list[Collection]) -> list[MessageSource]:
    """Every chunk of the collections, in reading order (by file, then position), each a numbered source."""
    sources: list[MessageSource] = []
    for collection in collections:
        for document in repo.list_documents(collection.id):
            for chunk in repo.chunks_of(document.id):
                if len(sources) == WHOLE_LIMIT:
                    return sources
                n = len(sources) + 1
                sources.append(MessageSource(
                    rank=n, number=n, chunk_id=chunk.id, collection_id=collection.id, path=document.path,
                    kind=document.kind, page_start=chunk.page_start, page_end=chunk.page_end,
                    line_start=chunk.line_start, line_end=chunk.line_end, heading_path=chunk.heading_path,
                    text=chunk.text, tokens=chunk.token_count))
    return sources


def _kinds(repo: DocumentsRepository, hits: list[Hit]) -> dict[int, str | None]:
    return {document_id: repo.get_document(document_id).kind for document_id in {h.document_id for h in hits}}


def _tokens(repo: DocumentsRepository, chunk_ids: list[int]) -> dict[int, int]:
    return {chunk_id: source.chunk.token_count for chunk_id, source in repo.chunk_sources(chunk_ids).items()}


def _first_cut(sources: list[MessageSource], free: int) -> list[MessageSource]:
    """The best sources whose estimated size fits the free context (the assembler then counts exactly)."""
    kept, used = [], 0
    for source in sources:
        used += int((source.tokens or len(source.text) // 3) * TOKENS_PER_EMBEDDING_TOKEN) + LABEL_TOKENS
        if used > free and kept:
            break
        kept.append(source)
    return kept


def _mark_kept(grounding: Grounding, kept: list[MessageSource]) -> Grounding:
    """The numbers of the sources that went in stay; the others wanted in are marked as cut by the budget."""
    kept_ranks = {s.rank for s in kept}
    sources = tuple(
        s if s.number is None or s.rank in kept_ranks else replace(s, number=None, cut_reason=CUT_BUDGET)
        for s in grounding.sources)
    return replace(grounding, sources=sources)
