"""Training examples: made from passages, Q/A pairs or chat data, de-duplicated, split, mixed, previewed.

An example is either plain text (raw mode: continued pre-training, loss on every token) or a
conversation (qa and chat modes: formatted with the model's own chat template in the trainer,
loss on the assistant's tokens only). This module is pure Python: token counts come from the
trainer child, which has the model's tokenizer (see plan.py).

Modes:
- raw: each passage of the documents is one text example;
- qa: each (question, answer) pair is a user turn and an assistant turn;
- chat: the user's own conversations (chat_data.read_chat_jsonl).
"""

from __future__ import annotations

import hashlib
import json
import random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from engine.finetune.errors import DatasetEmpty
from engine.finetune.qa_writer import QAPair
from engine.finetune.sources import Passage

MODES = ("raw", "qa", "chat")
MIN_TEXT_CHARS = 20  # a raw example shorter than this teaches nothing (a heading, a page number)


@dataclass(frozen=True)
class Example:
    kind: str  # "text" or "chat"
    text: str = ""
    messages: tuple[dict, ...] = ()
    source: str = ""
    general: bool = False  # mixed-in general text, not the user's data

    def to_json(self) -> dict:
        data: dict = {"kind": self.kind, "source": self.source}
        if self.kind == "text":
            data["text"] = self.text
        else:
            data["messages"] = list(self.messages)
        if self.general:
            data["general"] = True
        return data

    @classmethod
    def from_json(cls, data: dict) -> Example:
        return cls(data["kind"], data.get("text", ""), tuple(data.get("messages", ())), data.get("source", ""),
                   bool(data.get("general", False)))

    def dedupe_key(self) -> str:
        """Case, spacing and Unicode form do not make two examples different."""
        if self.kind == "text":
            body = self.text
        else:
            body = "\x1e".join(f"{m['role']}\x1f{m['content']}" for m in self.messages)
        return " ".join(unicodedata.normalize("NFKC", body).casefold().split())

    @property
    def chars(self) -> int:
        return len(self.text) if self.kind == "text" else sum(len(m["content"]) for m in self.messages)

    def summary(self, width: int = 120) -> str:
        """One line for a preview table."""
        if self.kind == "text":
            body = self.text
        else:
            body = " | ".join(f"{m['role']}: {m['content']}" for m in self.messages if m["role"] != "system")
        body = " ".join(body.split())
        return body if len(body) <= width else body[: width - 1] + "…"


@dataclass(frozen=True)
class DatasetCounts:
    given: int  # examples before filtering
    too_short: int
    duplicates: int
    train: int
    held_out: int
    general: int  # of train, mixed-in general examples


@dataclass
class Dataset:
    mode: str
    train: list[Example]
    held_out: list[Example]
    counts: DatasetCounts
    problems: dict[str, str] = field(default_factory=dict)  # files that were not used, and why

    def preview(self, first: int = 10) -> DatasetPreview:
        lengths = [e.chars for e in self.train]
        return DatasetPreview(self.mode, [e.summary() for e in self.train[:first]], self.counts,
                              min(lengths, default=0), max(lengths, default=0),
                              sum(lengths) / len(lengths) if lengths else 0.0, dict(self.problems))

    def content_hash(self) -> str:
        """SHA-256 of the examples as written (train then held-out): the adapter's record of its data."""
        digest = hashlib.sha256()
        for part, examples in (("train", self.train), ("held_out", self.held_out)):
            digest.update(part.encode())
            for example in examples:
                digest.update(json.dumps(example.to_json(), sort_keys=True, ensure_ascii=False).encode())
                digest.update(b"\n")
        return digest.hexdigest()

    def write(self, folder: Path) -> None:
        """train.jsonl and held_out.jsonl in `folder` (the job's dataset folder)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, examples in (("train.jsonl", self.train), ("held_out.jsonl", self.held_out)):
            tmp = folder / f".{name}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                for example in examples:
                    f.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            tmp.replace(folder / name)

    @classmethod
    def read(cls, folder: Path, mode: str) -> Dataset:
        def load(name: str) -> list[Example]:
            path = folder / name
            if not path.exists():
                return []
            return [Example.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip()]

        train, held_out = load("train.jsonl"), load("held_out.jsonl")
        counts = DatasetCounts(len(train) + len(held_out), 0, 0, len(train), len(held_out),
                               sum(e.general for e in train))
        return cls(mode, train, held_out, counts)


@dataclass(frozen=True)
class DatasetPreview:
    """What the page shows before a plan: the first examples, the counts, lengths in characters.

    Token lengths need the model's tokenizer: the plan (measured in the trainer) adds them."""

    mode: str
    first: list[str]
    counts: DatasetCounts
    min_chars: int
    max_chars: int
    mean_chars: float
    problems: dict[str, str]


# --- examples per mode --------------------------------------------------------------------------

def text_examples(passages: Iterable[Passage]) -> list[Example]:
    return [Example("text", text=p.text, source=p.source) for p in passages]


def qa_examples(pairs: Iterable[QAPair | tuple[str, str]], system: str | None = None) -> list[Example]:
    """One conversation per pair (reviewed pairs from the bench come in as plain tuples)."""
    out = []
    for pair in pairs:
        question, answer, source = (pair.question, pair.answer, pair.source) if isinstance(pair, QAPair) \
            else (pair[0], pair[1], "")
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": str(question).strip()}, {"role": "assistant", "content": str(answer).strip()}]
        out.append(Example("chat", messages=tuple(messages), source=source))
    return out


def chat_examples(conversations: Iterable[Sequence[dict]], source: str = "") -> list[Example]:
    return [Example("chat", messages=tuple(c), source=source) for c in conversations]


# --- the dataset ----------------------------------------------------------------------------------

def build_dataset(mode: str, examples: Sequence[Example], *, held_out_fraction: float = 0.1,
                  general_fraction: float = 0.0, seed: int = 0,
                  problems: dict[str, str] | None = None) -> Dataset:
    """Filter, de-duplicate, split off a held-out part and mix in general text.

    DatasetEmpty (with the counts) when nothing is left to train on."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if not 0 <= held_out_fraction < 1 or not 0 <= general_fraction < 1:
        raise ValueError("fractions are from 0 to below 1")
    kept, too_short, duplicates, seen = [], 0, 0, set()
    for example in examples:
        if not _usable(example):
            too_short += 1
            continue
        key = example.dedupe_key()
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        kept.append(example)
    problems = dict(problems or {})
    if not kept:
        raise DatasetEmpty(_empty_message(mode, len(examples), too_short, duplicates, problems))
    rng = random.Random(seed)
    order = list(kept)
    rng.shuffle(order)
    n_held = _held_out_count(len(order), held_out_fraction)
    held_out, train = order[:n_held], order[n_held:]
    general = general_examples(mode, _general_count(len(train), general_fraction), rng)
    train = train + general
    rng.shuffle(train)
    counts = DatasetCounts(len(examples), too_short, duplicates, len(train), len(held_out), len(general))
    return Dataset(mode, train, held_out, counts, problems)


def general_examples(mode: str, count: int, rng: random.Random) -> list[Example]:
    """`count` examples of Ember's general text (resources/finetune/general.jsonl), of the mode's kind.

    Mixed in so that the model keeps what it knew; written for Ember and in the public domain."""
    if count <= 0:
        return []
    kind = "text" if mode == "raw" else "chat"
    pool = [e for e in load_general() if e.kind == kind]
    rng.shuffle(pool)
    return pool[:count]


def load_general() -> list[Example]:
    path = resources.files("resources") / "finetune" / "general.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Example.from_json({**json.loads(line), "general": True}) for line in lines if line.strip()]


def _usable(example: Example) -> bool:
    if example.kind == "text":
        return len(example.text.strip()) >= MIN_TEXT_CHARS
    return any(m["role"] == "assistant" and m["content"].strip() for m in example.messages) and any(
        m["role"] == "user" and m["content"].strip() for m in example.messages)


def _held_out_count(n: int, fraction: float) -> int:
    """None below 4 examples (each is needed to learn from), else at least one."""
    if fraction <= 0 or n < 4:
        return 0
    return max(1, min(n - 1, round(n * fraction)))


def _general_count(n_train: int, fraction: float) -> int:
    """General examples so that they make `fraction` of the training set."""
    return round(n_train * fraction / (1 - fraction)) if fraction > 0 else 0


def _empty_message(mode: str, given: int, too_short: int, duplicates: int, problems: dict[str, str]) -> str:
    parts = [f"There is nothing to train on: {given} example{'s' if given != 1 else ''} in {mode} mode"]
    if too_short:
        parts.append(f"{too_short} too short or without an answer")
    if duplicates:
        parts.append(f"{duplicates} duplicate{'s' if duplicates != 1 else ''}")
    if problems:
        unused = "; ".join(f"{Path(path).name}: {why}" for path, why in list(problems.items())[:5])
        parts.append(f"{len(problems)} file{'s' if len(problems) != 1 else ''} not used ({unused})")
    return ", ".join(parts) + "."
