"""What the retrieval bench asks the chat model about a chunk, and how it reads the reply.

The model is asked for `Q:` / `A:` lines. A small model does not always comply (seen with
SmolLM2-135M: "Question 1:", "**Q:**", a number after the label, "A: The answer is: ...", both on one
line, the label repeated, a question wrapped in "answer the question \"...?\"", JSON, or no labels at
all), so `parse_pairs` accepts every form it can read and skips the rest; it never raises. What it
cannot tell (a poor question) is left to the user's review.
"""

from __future__ import annotations

import re

MAX_PASSAGE_CHARS = 3000  # a chunk is ~256 embedding tokens; this bounds an unusual one in the chat prompt
MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 300
MIN_QUESTION_WORDS = 3
COPY_RUN_WORDS = 8  # a question with this many of the passage's words in a row copies it

SYSTEM = ("You write quiz questions about a passage. Each question must be answerable from the passage alone, "
          "asked in your own words, and followed by a short answer.")

_MARKUP = re.compile(r"\*\*|__|`")
_LABEL = re.compile(
    r"^\s*(?:[-*•]\s*)?(?:\d{1,2}\s*[.)]\s*)?(?P<label>question|answer|q|a)\s*\d{0,2}\s*[:.)\-–]\s*(?P<rest>.*)$",
    re.IGNORECASE)
_INLINE_ANSWER = re.compile(r"\s(?:a|answer)\s*\d{0,2}\s*:\s*", re.IGNORECASE)
_NUMBERING = re.compile(r"^\s*(?:[-*•]\s*|\d{1,2}\s*[.):]\s*|\(\d{1,2}\)\s*)+")
_ANSWER_PREAMBLE = re.compile(r"^(?:the\s+)?(?:short\s+)?answer(?:\s+is\s*:?|\s*:)\s*", re.IGNORECASE)
_QUOTED_QUESTION = re.compile(r"[\"“]([^\"“”]+\?)[\"”]|question\s*:?\s*['‘]([^'‘’]+\?)")
_JSON_PAIR = re.compile(r'"question"\s*:\s*"((?:[^"\\]|\\.)*)"(?:\s*,\s*"answer"\s*:\s*"((?:[^"\\]|\\.)*)")?',
                        re.IGNORECASE)
# a "question" about the task or the passage itself, not about what the passage says
_META_QUESTION = ("this question", "the answer to", "your question", "this passage", "the passage", "<question>",
                  "[question]", "<short answer>")
_META_ANSWER = ("<short answer>", "<question>", "[question]", "a reader must be able", "this question")
_WORD = re.compile(r"\w+")
_QUESTIONS = re.compile(r"[^?]+\?")


def prompt_messages(passage: str, where: str, count: int = 1) -> list[dict]:
    """The chat messages asking for `count` question/answer pairs about one passage (`where`: its file
    and pages or lines, which helps the model read a fragment)."""
    passage = passage.strip()[:MAX_PASSAGE_CHARS]
    what = "one question" if count == 1 else f"{count} different questions"
    user = (f"Passage from {where}:\n\"\"\"\n{passage}\n\"\"\"\n\n"
            f"Write {what} about this passage, each with its answer. A reader of the passage must be able to "
            "answer from it. Use your own words; do not copy sentences from the passage. Keep each answer short "
            "(a few words). Reply in exactly this format:\nQ: <question>\nA: <short answer>")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """The (question, answer) pairs that can be read from a model's reply, in order, each once; the answer
    may be "" when the model wrote none. Never raises: what cannot be read is skipped."""
    text = _MARKUP.sub("", text or "")
    raw = _labelled(text)
    if not raw and '"question"' in text.lower():
        raw = [(_unescape(q), _unescape(a or "")) for q, a in _JSON_PAIR.findall(text)]
    if not raw:
        raw = _unlabelled(text)
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for question, answer in raw:
        question, answer = _split_inline(question, answer)
        question, answer = clean_question(question), clean_answer(answer)
        if question and question.casefold() not in seen:
            seen.add(question.casefold())
            pairs.append((question, answer))
    return pairs


def _labelled(text: str) -> list[tuple[str, str]]:
    """Pairs from `Q:` / `A:` lines (and their spellings); text under a label continues it until a blank
    line or the next label; an answer with no question before it is skipped."""
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    answer: str | None = None
    field: str | None = None
    for line in text.splitlines():
        match = _LABEL.match(line)
        if match:
            rest = match["rest"]
            while (again := _LABEL.match(rest)) and again["label"][0].lower() == match["label"][0].lower():
                rest = again["rest"]  # "Q: Q: ..." (a label written twice)
            if match["label"][0].lower() == "q":
                if question is not None:
                    pairs.append((question, answer or ""))
                question, answer, field = rest, None, "q"
            elif question is not None:
                answer, field = rest, "a"
        elif not line.strip():
            if field == "q" and question and question.strip() or field == "a" and answer and answer.strip():
                field = None
        elif field == "q":
            question = f"{question} {line}"
        elif field == "a":
            answer = f"{answer} {line}"
    if question is not None:
        pairs.append((question, answer or ""))
    return pairs


def _unlabelled(text: str) -> list[tuple[str, str]]:
    """No labels: each line that ends with a question mark is a question; the next line that is not one is
    its answer."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    pairs = []
    for i, line in enumerate(lines):
        if line.endswith("?"):
            following = lines[i + 1] if i + 1 < len(lines) else ""
            pairs.append((line, "" if following.endswith("?") else following))
    return pairs


def _split_inline(question: str, answer: str) -> tuple[str, str]:
    """A question that carries its answer on the same line: "Q: ...? A: ..." or "...? The answer."."""
    if not answer:
        parts = _INLINE_ANSWER.split(question, maxsplit=1)
        if len(parts) == 2:
            return parts[0], parts[1]
        head, mark, tail = question.partition("?")
        if mark and _WORD.search(tail) and not tail.strip().endswith("?"):
            return head + mark, tail
    return question, answer


def clean_question(question: str) -> str:
    """The question without numbering, quotes and wrapping; "" when it is not a usable question. Of
    several questions in a row ("What is the answer to this question? What makes ...?") the first usable
    one is taken."""
    question = " ".join(_MARKUP.sub("", question).split())
    quoted = _QUOTED_QUESTION.search(question)
    inner = quoted and (quoted[1] or quoted[2])
    if inner and len(_WORD.findall(inner)) >= MIN_QUESTION_WORDS:
        question = inner  # 'Can you answer the question "What is X?"' asks "What is X?"
    parts = _QUESTIONS.findall(question) if question.count("?") > 1 else [question]
    return next((usable for part in parts if (usable := _usable_question(part))), "")


def _usable_question(question: str) -> str:
    question = _NUMBERING.sub("", question).strip(" \"'“”‘’")
    if len(_WORD.findall(question)) < MIN_QUESTION_WORDS or len(question) > MAX_QUESTION_CHARS:
        return ""
    if any(meta in question.lower() for meta in _META_QUESTION):
        return ""
    return question


def clean_answer(answer: str) -> str:
    """The answer without "The answer is:", numbering and quotes, cut to MAX_ANSWER_CHARS at a word."""
    answer = " ".join(_MARKUP.sub("", answer or "").split())
    answer = _ANSWER_PREAMBLE.sub("", _NUMBERING.sub("", answer)).strip(" \"'“”‘’")
    if any(meta in answer.lower() for meta in _META_ANSWER):
        return ""
    if len(answer) > MAX_ANSWER_CHARS:
        answer = answer[:MAX_ANSWER_CHARS].rsplit(" ", 1)[0] + "…"
    return answer


def copies_passage(question: str, passage: str, run: int = COPY_RUN_WORDS) -> bool:
    """True when the question holds `run` or more of the passage's words in a row: the model echoed the
    passage instead of asking about it (BM25 would find such a question for the wrong reason)."""
    words = [w.casefold() for w in _WORD.findall(question)]
    if len(words) < run:
        return False
    text = " " + " ".join(w.casefold() for w in _WORD.findall(passage)) + " "
    return any(" " + " ".join(words[i:i + run]) + " " in text for i in range(len(words) - run + 1))


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", " ").replace("\\\\", "\\")
