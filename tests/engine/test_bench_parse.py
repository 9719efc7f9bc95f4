"""Reading question/answer pairs from what a small chat model writes: the messy forms seen from
SmolLM2-135M are read, junk is skipped, nothing raises; and the prompt carries the passage."""

from __future__ import annotations

import pytest

from engine.rag.qa_prompt import MAX_ANSWER_CHARS, copies_passage, parse_pairs, prompt_messages

READABLE = [
    ("Q: How often is a sourdough starter fed?\nA: Every day.",
     [("How often is a sourdough starter fed?", "Every day.")]),
    # the number after the label, and answers that start with "The answer is:" in quotes
    ('Q: 1. What is the purpose of castling in chess?\nA: The answer is: "To protect the king."',
     [("What is the purpose of castling in chess?", "To protect the king.")]),
    # spelled out, in bold, numbered, several pairs
    ("**Question 1:** When may a king castle?\n**Answer:** If neither piece has moved.\n\n"
     "**Question 2:** Which piece moves two squares?\n**Answer:** The king.",
     [("When may a king castle?", "If neither piece has moved."), ("Which piece moves two squares?", "The king.")]),
    # the label on its own line, the text under it, and a blank line ending the answer
    ("Question:\nHow long does marathon training take?\nAnswer:\nAbout four months.\n\nI hope this helps!",
     [("How long does marathon training take?", "About four months.")]),
    # both on one line
    ("Q: How often do you feed it? A: Every day.", [("How often do you feed it?", "Every day.")]),
    ("Q: How often do you feed it? Every day.", [("How often do you feed it?", "Every day.")]),
    # the label twice, a meta question before the real one
    ('Q: Q: \nWhat is the answer to this question? What makes a "lively" starter double in a few hours?',
     [('What makes a "lively" starter double in a few hours?', "")]),
    # the question wrapped in a request
    ('Q: Can you provide a detailed answer to the question "What is the purpose of castling in chess?"',
     [("What is the purpose of castling in chess?", "")]),
    # single quotes after "the question", an answer that repeats the instructions
    ("Q: What's the answer to the question 'How do you make a Pastel de nata, a custard tart?\n"
     "A: A reader must be able to answer from the passage.",
     [("How do you make a Pastel de nata, a custard tart?", "")]),
    # JSON, also cut off half-way
    ('[{"question": "How long does marathon training take?", "answer": "About four months"}, {"quest',
     [("How long does marathon training take?", "About four months")]),
    # no labels at all
    ("How often should the starter be fed?\nEvery day.\n\nWhat does it smell like?\nPleasantly sour.",
     [("How often should the starter be fed?", "Every day."), ("What does it smell like?", "Pleasantly sour.")]),
    # an answer before any question is skipped; the same question twice is kept once
    ("A: stray\nQ: Where is the starter kept?\nA: At room temperature.\nQ: Where is the starter kept?\nA: Warm.",
     [("Where is the starter kept?", "At room temperature.")]),
]

UNREADABLE = [
    "",
    None,
    "???",
    "The passage provides guidance on the proper amount of training to do for a marathon.",
    "Q: What is the answer to this question?\nA: The answer is \"What is the answer to this question?\"",
    "Q: <question>\nA: <short answer>",
    "Q: The answer to the question is:\nA: The short answer.",  # about the task, not the passage
    "Q: How does this passage relate to volcanoes?\nA: It describes an eruption.",
    "Q:\nA:\nQ: too short\nA: yes",
    "Q: " + "why " * 200 + "?",
    "\x00\x01 Q: \ufffd\ufffd",
]


@pytest.mark.parametrize(("reply", "expected"), READABLE)
def test_what_can_be_read_is_read(reply, expected):
    assert parse_pairs(reply) == expected


@pytest.mark.parametrize("reply", UNREADABLE)
def test_what_cannot_be_read_is_skipped(reply):
    assert parse_pairs(reply) == []


def test_a_long_answer_is_cut_at_a_word():
    [(question, answer)] = parse_pairs("Q: How does castling work in chess?\nA: " + "The king moves. " * 60)
    assert question == "How does castling work in chess?"
    assert answer.startswith("The king moves. The king") and answer.endswith("…")
    assert len(answer) <= MAX_ANSWER_CHARS + 1 and not answer[:-1].endswith(" ")


def test_a_question_that_echoes_the_passage_is_recognised():
    passage = "In chess, castling is allowed only if neither piece has moved before."
    assert copies_passage("Why is castling allowed only if neither piece has moved before?", passage)
    assert not copies_passage("When may a king castle?", passage)
    assert not copies_passage("Is castling allowed if the rook moved?", passage)


def test_the_prompt_carries_the_passage_where_it_is_and_the_format():
    messages = prompt_messages("Feed the starter every day.", "bread.md, lines 3–9", count=2)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "Feed the starter every day." in user and "bread.md, lines 3–9" in user
    assert "2 different questions" in user and "Q: <question>" in user and "A: <short answer>" in user
    assert len(prompt_messages("word " * 5000, "big.txt")[1]["content"]) < 4000  # a huge chunk is cut
