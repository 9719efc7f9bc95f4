"""Question/answer pairs written by the loaded chat model, several paraphrased ones per passage.

The pairs are a draft: the page shows them in a table to review, edit or drop before training. A
small model writes poor pairs; the parser keeps only what has both a question and an answer, and
the count per passage tells the user how it went. Reviewed pairs from elsewhere (the retrieval
bench's table) come in as plain (question, answer) data and skip this step.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from engine.errors import Cancelled
from engine.finetune.sources import Passage
from engine.jobs import CancelToken, Progress
from engine.runtime.client import HostClient
from engine.runtime.sampling import Sampling

PROMPT = """Read the text below. Write {count} different questions a reader could ask about the facts in it, \
each worded in another way, and answer each one with the facts from the text.
Use exactly this format, one pair after another:
Q: <question>
A: <answer>

Text:
{text}"""

_PAIR = re.compile(r"^\s*(?:\d+[.)]\s*)?(?:Q|Question)\s*[:.]\s*(.+?)\s*\n+\s*(?:A|Answer)\s*[:.]\s*(.+?)\s*(?=\n\s*(?:\d+[.)]\s*)?"
                   r"(?:Q|Question)\s*[:.]|\Z)", re.S | re.M | re.I)


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    source: str = ""


def parse_pairs(text: str, source: str = "") -> list[QAPair]:
    """The Q:/A: pairs in a model's reply (numbered or not); a pair missing either half is dropped."""
    pairs = []
    for question, answer in _PAIR.findall(text):
        question, answer = " ".join(question.split()), " ".join(answer.split())
        if len(question) > 3 and answer:
            pairs.append(QAPair(question, answer, source))
    return pairs


def write_qa_pairs(client: HostClient, passages: Sequence[Passage], *, per_passage: int = 3,
                   cancel: CancelToken | None = None, max_tokens: int = 400) -> Iterator[Progress]:
    """Ask the chat model for `per_passage` pairs per passage; returns the list of QAPair.

    Greedy decoding, so the same passages give the same draft."""
    cancel = cancel or CancelToken()
    sampling = Sampling(temperature=0.0, max_tokens=max_tokens, seed=0)
    pairs: list[QAPair] = []
    for index, passage in enumerate(passages):
        yield Progress(index, len(passages), "passages", f"Writing questions for passage {index + 1} of {len(passages)}")
        messages = [{"role": "user", "content": PROMPT.format(count=per_passage, text=passage.text)}]
        reply = []
        for event in client.stream_chat(messages, sampling, cancel):
            if event.stats is None:
                reply.append(event.text)
        if cancel.cancelled:
            raise Cancelled("Stopped writing questions.")
        pairs.extend(parse_pairs("".join(reply), passage.source)[:per_passage])
    yield Progress(len(passages), len(passages), "passages", f"{len(pairs)} question/answer pairs written")
    return pairs
