"""The evaluation view's engine: the same questions asked of the base model, the base model with the
documents, the adapter, and the adapter with the documents, side by side, with a score per column, so
learning (the adapter knows the facts) and forgetting (it lost general knowledge) both show.

    result = yield from compare(paths, base_gguf, adapter_gguf, questions, documents_for=search, cancel=cancel)

One chat model process runs the base GGUF; the adapter is put on and taken off in place
(`RuntimeHost.use_adapter`), so the four columns cost one model load. "+ documents" puts what
`documents_for(question, cancel)` retrieves (the caller passes the chat's own retrieval over a
collection: engine/rag sits beside this package, not under it) into the chat's prompt assembly;
without it those columns are "not run", with the reason, never filled with something else.

A reply counts as right when it contains at least half of the reference answer's content words
(lower case, punctuation and a few very common words dropped; numbers count as words), not counting
the words the question itself gives away (an answer that only repeats the question knows nothing). It is a
plain, explainable rule: the view shows every answer beside its reference for the user to judge.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from engine.chat.turn import TurnRequest, assemble_turn
from engine.errors import InvalidInput
from engine.finetune.dataset import Dataset
from engine.jobs import CancelToken, Progress
from engine.paths import EmberPaths
from engine.runtime.sampling import Sampling
from engine.runtime.supervisor import HostSettings, RuntimeHost

COLUMNS = ("base", "base + documents", "adapter", "adapter + documents")
ANSWER_TOKENS = 64
CONTEXT = 2048
RIGHT_SHARE = 0.5
STOPWORDS = frozenset("a an the of in on at to for by with and or is are was were be been it its this that as "
                      "from what which who whom how when where why do does did".split())


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    reference: str | None  # None: a probe question, answered but not scored
    kind: str  # "held-out", "probe" or "general"


@dataclass
class EvalRow:
    question: EvalQuestion
    answers: dict[str, str] = field(default_factory=dict)  # column -> answer
    right: dict[str, bool] = field(default_factory=dict)  # column -> judged right (scored questions only)


@dataclass
class Evaluation:
    columns: tuple[str, ...]
    rows: list[EvalRow]
    not_run: dict[str, str]  # column -> why it was not run
    seconds: float

    def score(self, column: str) -> tuple[int, int] | None:
        """(right, scored questions) of a column; None when the column was not run."""
        if column in self.not_run:
            return None
        scored = [row for row in self.rows if row.question.reference is not None and column in row.right]
        return sum(row.right[column] for row in scored), len(scored)

    def score_by_kind(self, column: str, kind: str) -> tuple[int, int]:
        scored = [row for row in self.rows if row.question.kind == kind and column in row.right]
        return sum(row.right[column] for row in scored), len(scored)

    def to_dict(self) -> dict:
        return {"columns": list(self.columns), "not_run": self.not_run, "seconds": round(self.seconds, 2),
                "scores": {c: self.score(c) for c in self.columns},
                "rows": [{"question": r.question.question, "reference": r.question.reference, "kind": r.question.kind,
                          "answers": r.answers, "right": r.right} for r in self.rows]}


# --- the questions --------------------------------------------------------------------------------
def general_questions() -> list[EvalQuestion]:
    """A few facts a small model knows, to see whether the adapter made it forget them."""
    data = json.loads((resources.files("resources") / "finetune" / "general_questions.json").read_text("utf-8"))
    return [EvalQuestion(item["question"], item["answer"], "general") for item in data]


def held_out_questions(dataset: Dataset, limit: int = 12) -> list[EvalQuestion]:
    """The held-out question/answer examples the training never saw (chat-style ones)."""
    found = []
    for example in dataset.held_out:
        if example.kind != "chat" or example.general:
            continue
        user = next((m["content"] for m in example.messages if m["role"] == "user"), None)
        reply = next((m["content"] for m in example.messages if m["role"] == "assistant"), None)
        if user and reply:
            found.append(EvalQuestion(user, reply, "held-out"))
    return found[:limit]


def probe_questions(probes: Sequence[str]) -> list[EvalQuestion]:
    return [EvalQuestion(p, None, "probe") for p in probes if p.strip()]


# --- judging ---------------------------------------------------------------------------------------
def content_words(text: str) -> set[str]:
    text = unicodedata.normalize("NFKC", text).casefold()
    return {w for w in re.findall(r"\w+", text) if w not in STOPWORDS and (len(w) > 2 or w.isdigit())}


def is_right(answer: str, reference: str, question: str = "") -> bool:
    """At least half of the reference's content words that the question does not contain are in the answer."""
    wanted = content_words(reference) - content_words(question)
    if not wanted:
        return False
    return len(wanted & content_words(answer)) / len(wanted) >= RIGHT_SHARE


# --- asking ----------------------------------------------------------------------------------------
def compare(paths: EmberPaths, base_gguf: Path | str, adapter_gguf: Path | str, questions: Sequence[EvalQuestion], *,
            scale: float = 1.0, documents_for: Callable[[str, CancelToken], Iterator[Progress]] | None = None,
            threads: int | None = None, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Ask every question in the four columns; returns an Evaluation. `documents_for`: a generator
    function giving the document texts for a question (the "+ documents" columns; None: not run)."""
    cancel = cancel or CancelToken()
    if not questions:
        raise InvalidInput("There are no questions to ask.", "Add probe questions, or train with a held-out share.")
    if not Path(adapter_gguf).is_file():
        raise InvalidInput(f"The adapter {adapter_gguf} is not there.", "Export the adapter again.")
    started = time.monotonic()
    not_run = {} if documents_for is not None else {
        c: "no collection was chosen for the documents" for c in COLUMNS if c.endswith("documents")}
    rows = [EvalRow(q) for q in questions]
    total = len(rows) * (len(COLUMNS) - len(not_run))
    done = 0
    host = RuntimeHost(HostSettings(model_path=str(base_gguf), context_length=CONTEXT, threads=threads),
                       log_dir=paths.logs)
    try:
        yield Progress(0, total, "questions", "Loading the base model…")
        yield from host.start(cancel)
        sources: dict[int, list[str]] = {}
        if documents_for is not None:
            for index, row in enumerate(rows):
                sources[index] = yield from documents_for(row.question.question, cancel)
        for column in COLUMNS:
            if column in not_run:
                continue
            host.use_adapter(adapter_gguf if column.startswith("adapter") else None, scale, cancel)
            for index, row in enumerate(rows):
                if cancel.cancelled:
                    return Evaluation(COLUMNS, rows, not_run, time.monotonic() - started)
                documents = sources.get(index, []) if column.endswith("documents") else []
                answer = _answer(host.client(), row.question.question, documents, cancel)
                row.answers[column] = answer
                if row.question.reference is not None:
                    row.right[column] = is_right(answer, row.question.reference, row.question.question)
                done += 1
                yield Progress(done, total, "questions", f"{column}: {done} of {total}")
    finally:
        host.stop()
    return Evaluation(COLUMNS, rows, not_run, time.monotonic() - started)


def _answer(client, question: str, documents: list[str], cancel: CancelToken) -> str:
    request = TurnRequest("", [], question, ANSWER_TOKENS, CONTEXT, documents=documents)
    turn = assemble_turn(client, request, drop_oldest=True, cancel=cancel)
    parts = [event.text for event in client.stream_chat(turn.messages, Sampling(temperature=0.0, seed=0,
                                                                                max_tokens=ANSWER_TOKENS), cancel)
             if event.stats is None]
    return "".join(parts).strip()
