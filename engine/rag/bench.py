"""The retrieval bench: questions written from a collection's own chunks, then each retrieval mode scored
on them.

`write_pairs` samples chunks (seeded, one document after another so that every file gets its turn,
skipping chunks too short to ask about and chunks asked about before), asks the chat model for a
question and a short answer about each, and stores what it can read as drafts with a copy of the
chunk (engine/store/qa_repo.py). The user then keeps, edits or drops them.

`score` retrieves every kept question (and the drafts, if asked) with BM25 alone, the vectors alone,
and both fused, and reports where each mode ranked the question's chunk: recall@1/3/5/10 and MRR@10
per mode, and the winner (best recall@5; MRR breaks a tie; then the order hybrid, BM25, vectors).

Which chunk is right for a pair: the chunk it was written from, while that chunk exists unchanged
(same id, same file, same text). After the file was indexed again its chunks have new ids (and an
old id may now belong to another chunk), so then any chunk of the same file whose pages (for a PDF)
or lines overlap the pair's counts; for a source with neither, a chunk with the same text. A pair
whose passage is no longer in the index counts as a miss in every mode (`missing`), never as left out.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Generator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from engine.errors import Cancelled, InvalidInput
from engine.jobs import CancelToken, Progress
from engine.rag.embedding_prefixes import prefixes_for
from engine.rag.qa_prompt import copies_passage, parse_pairs, prompt_messages
from engine.rag.retrieval_metrics import first_rank, mean_reciprocal_rank, recall_at
from engine.rag.retrieve import MODES, search
from engine.rag.vectors import VectorStore
from engine.runtime.sampling import Sampling
from engine.store.documents_repo import Document, DocumentsRepository, StoredChunk
from engine.store.qa_repo import NewPair, QAPair, QARepository, location

KS = (1, 3, 5, 10)
MIN_CHUNK_WORDS = 12  # shorter chunks (a title, a caption) give no question worth asking
MAX_PAIRS = 200  # per run
TRIES_PER_PAIR = 2  # chunks asked at most per pair wanted (a small model often writes nothing readable)
EMBED_BATCH = 32
MODE_NAMES = {"hybrid": "Hybrid", "bm25": "BM25", "vector": "Vectors"}


# --- writing ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WriteReport:
    pairs: tuple[QAPair, ...]  # the drafts written, in order
    chunks_asked: int
    unreadable: int  # chunks whose reply gave no usable pair
    errors: tuple[str, ...]  # what the model process reported for chunks it could not answer
    seconds: float
    stopped: bool = False


def sample_chunks(repo: DocumentsRepository, collection_id: int, seed: int = 0, *,
                  skip: AbstractSet[tuple[str, str]] = frozenset(), min_words: int = MIN_CHUNK_WORDS
                  ) -> list[tuple[Document, StoredChunk]]:
    """Every chunk worth asking about, in a seeded order that takes one chunk of each document in turn
    (documents shuffled, each one's chunks shuffled). `skip`: (path, text) of chunks asked about before."""
    rng = random.Random(seed)
    queues = []
    for document in repo.list_documents(collection_id):
        chunks = [c for c in repo.chunks_of(document.id)
                  if len(c.text.split()) >= min_words and (document.path, c.text) not in skip]
        rng.shuffle(chunks)
        if chunks:
            queues.append((document, chunks))
    rng.shuffle(queues)
    order = []
    while queues:
        for document, chunks in queues:
            order.append((document, chunks.pop()))
        queues = [(d, c) for d, c in queues if c]
    return order


def write_pairs(conn, collection_id: int, chat, count: int, *, seed: int = 0, per_chunk: int = 1,
                min_words: int = MIN_CHUNK_WORDS, sampling: Sampling | None = None,
                cancel: CancelToken | None = None) -> Generator[Progress, None, WriteReport]:
    """Ask the chat model (a HostClient: `chat.stream_chat`) for `count` new pairs and store them as drafts.

    Progress per chunk; a Stop ends it between chunks or inside a reply, keeping the pairs stored so far
    (the report says `stopped`). Use as `report = yield from write_pairs(...)`."""
    cancel = cancel or CancelToken()
    if not 1 <= count <= MAX_PAIRS:
        raise InvalidInput(f"Ask for 1 to {MAX_PAIRS} questions at a time, not {count}.")
    started = time.monotonic()
    repo, qa = DocumentsRepository(conn), QARepository(conn)
    collection = repo.get_collection(collection_id)
    order = sample_chunks(repo, collection_id, seed, skip=qa.asked_chunks(collection_id), min_words=min_words)
    if not order and not repo.counts(collection_id).chunks:
        raise InvalidInput(f"{collection.name} has nothing indexed yet.", "Index its documents, then write questions.")
    if not order:
        raise InvalidInput(f"{collection.name} has no passage left to write questions about: every one long enough "
                           "has a question already.", "Add documents to the collection, or review the questions "
                                                      "you have.")
    order = order[: TRIES_PER_PAIR * math.ceil(count / per_chunk)]
    seen = qa.questions(collection_id)
    written: list[QAPair] = []
    errors: list[str] = []
    asked = unreadable = 0
    stopped = False
    for document, chunk in order:
        if len(written) >= count:
            break
        if cancel.cancelled:
            stopped = True
            break
        where = location(document.path, chunk.page_start, chunk.page_end, chunk.line_start, chunk.line_end)
        yield Progress(len(written), count, "questions", f"Writing a question about {where} "
                                                         f"({len(written)} of {count} written)")
        wanted = min(per_chunk, count - len(written))
        reply, error = _ask(chat, prompt_messages(chunk.text, where, wanted),
                            _sampling(sampling, seed, chunk.id, wanted), cancel)
        if cancel.cancelled:
            stopped = True
            break
        asked += 1
        if error:
            errors.append(f"{where}: {error}")
        found = [(q, a) for q, a in parse_pairs(reply)
                 if q.casefold() not in seen and not copies_passage(q, chunk.text)][:wanted]
        if not found:
            unreadable += 1
            continue
        seen.update(q.casefold() for q, _ in found)
        written += qa.add_pairs(collection_id, [NewPair(q, a, chunk.id, document.path, chunk.text, chunk.page_start,
                                                        chunk.page_end, chunk.line_start, chunk.line_end)
                                                for q, a in found])
    yield Progress(len(written), count, "questions", f"{len(written)} of {count} questions written")
    return WriteReport(tuple(written), asked, unreadable, tuple(errors), time.monotonic() - started, stopped)


def _sampling(base: Sampling | None, seed: int, chunk_id: int, pairs: int) -> Sampling:
    """Low temperature (the format matters more than variety), a seed per chunk so a run can be repeated."""
    base = base or Sampling(temperature=0.2, top_p=0.9, repeat_penalty=1.1)
    return base.replace(seed=(seed * 1_000_003 + chunk_id) % 2**32, max_tokens=64 + 64 * pairs)


def _ask(chat, messages: list[dict], sampling: Sampling, cancel: CancelToken) -> tuple[str, str | None]:
    """The model's reply and the error its process reported, if any (the reply is then what came before)."""
    parts, error = [], None
    for event in chat.stream_chat(messages, sampling, cancel):
        if event.stats is None:
            parts.append(event.text)
        elif event.stats.stop_reason == "error":
            error = event.stats.error or "the model process could not answer"
    return "".join(parts), error


# --- scoring ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModeScore:
    mode: str
    recall: dict[int, float]  # k -> share of questions whose chunk came in the first k
    mrr: float

    @property
    def name(self) -> str:
        return MODE_NAMES[self.mode]


@dataclass(frozen=True)
class PairRanks:
    """Where each mode ranked one pair's chunk (None: not in its first 10)."""

    pair_id: int
    question: str
    location: str
    ranks: dict[str, int | None]
    missing: bool = False  # its passage is no longer in the index


@dataclass(frozen=True)
class BenchReport:
    collection: str
    scores: tuple[ModeScore, ...]  # in MODES order: hybrid, BM25, vectors
    pairs: tuple[PairRanks, ...]
    winner: str
    tied: tuple[str, ...] = ()  # other modes with exactly the winner's figures
    included_drafts: bool = False
    seconds: float = 0.0
    ks: tuple[int, ...] = field(default=KS)

    def score_of(self, mode: str) -> ModeScore:
        return next(s for s in self.scores if s.mode == mode)

    @property
    def missing(self) -> int:
        return sum(1 for p in self.pairs if p.missing)

    def summary(self) -> str:
        """The result in one sentence, for the bench panel and the CLI."""
        best = self.score_of(self.winner)
        n = len(self.pairs)
        found = round(best.recall[5] * n)
        who = " and ".join(MODE_NAMES[m] for m in (self.winner, *self.tied))
        verb = "tie" if self.tied else "wins"
        text = (f"{who} {verb} on {n} question{'s' if n != 1 else ''}: {found} of {n} found in the top 5 "
                f"(recall@5 {best.recall[5]:.2f}), MRR {best.mrr:.2f}.")
        if self.missing:
            text += f" {self.missing} of them point at passages that are no longer indexed (counted as misses)."
        return text

    def to_dict(self) -> dict:
        return {"collection": self.collection, "questions": len(self.pairs), "winner": self.winner,
                "tied": list(self.tied), "included_drafts": self.included_drafts, "missing": self.missing,
                "modes": {s.mode: {**{f"recall@{k}": round(v, 4) for k, v in s.recall.items()},
                                   "mrr": round(s.mrr, 4)} for s in self.scores},
                "pairs": [{"id": p.pair_id, "question": p.question, "source": p.location, "ranks": p.ranks}
                          for p in self.pairs],
                "seconds": round(self.seconds, 3), "summary": self.summary()}


def score(conn, collection_id: int, embed: Callable, *, include_drafts: bool = False,
          vectors: VectorStore | None = None, cancel: CancelToken | None = None
          ) -> Generator[Progress, None, BenchReport]:
    """Score each mode on the collection's kept pairs (and drafts when `include_drafts`).

    `embed(texts, cancel)`: the collection's embedding model (a HostClient's `embed`); the questions get
    the prefix its family wants. Use as `report = yield from score(...)`."""
    cancel = cancel or CancelToken()
    started = time.monotonic()
    repo = DocumentsRepository(conn)
    collection = repo.get_collection(collection_id)
    pairs = pairs_to_score(conn, collection_id, include_drafts)
    prefix = prefixes_for(collection.embedding_model_path).query
    matrices = []
    for start in range(0, len(pairs), EMBED_BATCH):
        yield Progress(start, len(pairs), "questions", "Embedding the questions…")
        batch = [prefix + p.question for p in pairs[start:start + EMBED_BATCH]]
        matrices.append(embed(batch, cancel))
        if cancel.cancelled:
            raise Cancelled("Scoring was stopped.")
    query_vectors = [row for matrix in matrices for row in matrix]
    store = vectors or VectorStore()
    results = []
    for number, (pair, vector) in enumerate(zip(pairs, query_vectors, strict=True)):
        if cancel.cancelled:
            raise Cancelled("Scoring was stopped.")
        yield Progress(number, len(pairs), "questions", f"Searching with question {number + 1} of {len(pairs)}")
        right = right_chunks(repo, collection_id, pair)
        ranks = {mode: first_rank([h.chunk_id for h in search(conn, [collection_id], pair.question, vector,
                                                               k=max(KS), mode=mode, vectors=store)],
                                  right.__contains__) if right else None
                 for mode in MODES}
        results.append(PairRanks(pair.id, pair.question, pair.location, ranks, missing=not right))
    scores = tuple(ModeScore(mode, {k: recall_at([r.ranks[mode] for r in results], k) for k in KS},
                             mean_reciprocal_rank([r.ranks[mode] for r in results])) for mode in MODES)
    winner, tied = _winner(scores)
    yield Progress(len(pairs), len(pairs), "questions", "Scored")
    return BenchReport(collection.name, scores, tuple(results), winner, tied, include_drafts,
                       time.monotonic() - started)


def pairs_to_score(conn, collection_id: int, include_drafts: bool = False) -> list[QAPair]:
    """The pairs `score` measures, or a clear error when there are none (or nothing is indexed): quick
    SQL, so a caller can check before it starts the embedding model."""
    repo, qa = DocumentsRepository(conn), QARepository(conn)
    collection = repo.get_collection(collection_id)
    pairs = qa.list_pairs(collection_id, ("kept", "draft") if include_drafts else ("kept",))
    if not pairs:
        raise _nothing_to_score(collection.name, qa.counts(collection_id))
    if collection.embedding_dim is None:
        raise InvalidInput(f"{collection.name} has nothing indexed yet.", "Index its documents, then score.")
    return pairs


def right_chunks(repo: DocumentsRepository, collection_id: int, pair: QAPair) -> set[int]:
    """The ids of the chunks that answer for this pair (see the module's docstring); empty when its
    passage is gone."""
    if pair.chunk_id is not None:
        source = repo.chunk_sources([pair.chunk_id]).get(pair.chunk_id)
        if source is not None and source.collection_id == collection_id and source.path == pair.path \
                and source.chunk.text == pair.chunk_text:
            return {pair.chunk_id}
    document = repo.find_document(collection_id, pair.path)
    if document is None:
        return set()
    return {c.id for c in repo.chunks_of(document.id) if _overlaps(c, pair)}


def _overlaps(chunk: StoredChunk, pair: QAPair) -> bool:
    for first, last, start, end in ((pair.page_start, pair.page_end, chunk.page_start, chunk.page_end),
                                    (pair.line_start, pair.line_end, chunk.line_start, chunk.line_end)):
        if first is not None and start is not None:
            return first <= (end if end is not None else start) and start <= (last if last is not None else first)
    return chunk.text == pair.chunk_text


def _winner(scores: Sequence[ModeScore]) -> tuple[str, tuple[str, ...]]:
    """Best recall@5, then best MRR; among equals the first in MODES order wins and the rest tie."""
    key = lambda s: (s.recall[5], s.mrr)  # noqa: E731
    best = max(scores, key=key)  # max keeps the first of equals
    return best.mode, tuple(s.mode for s in scores if s is not best and key(s) == key(best))


def _nothing_to_score(name: str, counts: dict[str, int]) -> InvalidInput:
    total = sum(counts.values())
    if total == 0:
        return InvalidInput(f"{name} has no questions to score yet.",
                            "Write questions first (the chat model writes them from your documents), then keep "
                            "the good ones.")
    if counts["kept"] == 0 and counts["draft"] == 0:
        return InvalidInput(f"All {total} questions of {name} are dropped.", "Keep some of them, or write new ones.")
    return InvalidInput(f"None of the {counts['draft']} questions of {name} is kept yet.",
                        "Keep the good ones (or score the drafts too).")
