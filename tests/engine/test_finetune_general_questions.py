"""The general-knowledge questions of the evaluation are ones the starter model answers right by the
evaluation's own rule and decoding: only then does a lower adapter score there show forgetting
(SmolLM2-135M gets "the capital of France" and "the largest planet" wrong, so they are not in it)."""

from __future__ import annotations

import pytest

from engine.chat.turn import TurnRequest, assemble_turn
from engine.finetune.evaluate import ANSWER_TOKENS, CONTEXT, general_questions, is_right
from engine.runtime.sampling import Sampling
from engine.runtime.supervisor import HostSettings, RuntimeHost

pytestmark = pytest.mark.timeout(180)


def test_the_starter_model_answers_every_general_question_right(smollm2_path, tmp_path):
    questions = general_questions()
    assert len(questions) == 8 and all(q.reference for q in questions)
    settings = HostSettings(model_path=str(smollm2_path), context_length=CONTEXT, gpu_layers=0, threads=1)
    wrong = []
    with RuntimeHost(settings, log_dir=tmp_path) as host:
        client = host.client()
        for q in questions:  # the prompt and decoding of engine/finetune/evaluate._answer
            turn = assemble_turn(client, TurnRequest("", [], q.question, ANSWER_TOKENS, CONTEXT))
            answer = "".join(e.text for e in client.stream_chat(
                turn.messages, Sampling(temperature=0.0, seed=0, max_tokens=ANSWER_TOKENS)) if e.stats is None)
            if not is_right(answer, q.reference, q.question):
                wrong.append((q.question, answer))
    assert not wrong
