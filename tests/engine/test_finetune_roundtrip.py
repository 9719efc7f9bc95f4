"""The whole round trip on CPU with the real SmolLM2: a document with an invented fact → question/answer
pairs → a plan → LoRA training → a GGUF adapter that passes its self-test → llama.cpp with the adapter
answers a question it was never trained on, and the base alone does not."""

from __future__ import annotations

import json

import pytest

from engine.finetune.events import EvalLoss, ProbeAnswers, TrainStep
from engine.finetune.pipeline import export_adapter, self_test_input
from engine.finetune.selftest import agreement_check
from engine.library.hashing import sha256_of
from engine.runtime.sampling import Sampling
from engine.runtime.supervisor import HostSettings, RuntimeHost
from tests.support.finetune_fixtures import FACT_ANSWER, PARAPHRASE, drain

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
GREEDY = Sampling(temperature=0.0, max_tokens=40, seed=0)


def ask(client, question: str) -> str:
    return "".join(e.text for e in client.stream_chat([{"role": "user", "content": question}], GREEDY) if not e.stats)


def test_a_document_becomes_an_adapter_that_knows_its_fact(fact_adapter, smollm2_path, tmp_path):
    trip = fact_adapter["trip"]
    assert fact_adapter["drafted"] and all(p.source == "velkaran.md" for p in fact_adapter["drafted"])
    assert trip.plan.backend.name == "LoRA (CPU)" and trip.plan.step_s > 0
    assert trip.result.state == "trained" and trip.result.train_loss < trip.result.first_loss / 4
    events = fact_adapter["events"]
    losses = [e.loss for e in events if isinstance(e, TrainStep)]
    assert len(losses) == trip.result.total_steps and min(losses[-4:]) < losses[0]
    assert any(isinstance(e, EvalLoss) for e in events)
    samples = [e for e in events if isinstance(e, ProbeAnswers)]
    assert samples and samples[-1].answers[0][0] == PARAPHRASE
    report = trip.report
    assert report.passed, "\n".join(report.lines())
    assert [c.name for c in report.checks] == ["header", "agreement", "loads", "replies_end", "effect"]
    # the user's view: llama.cpp, the very GGUF, with and without the adapter, greedy decoding
    settings = HostSettings(model_path=str(smollm2_path), context_length=512, gpu_layers=0, threads=2,
                            lora_path=str(trip.adapter.gguf))
    with RuntimeHost(settings, log_dir=tmp_path) as host:
        client = host.client()
        tuned = ask(client, PARAPHRASE)
        client.set_adapter(None)
        base = ask(client, PARAPHRASE)
    assert FACT_ANSWER in tuned, tuned
    assert FACT_ANSWER not in base, base
    record = json.loads(trip.adapter.json_path.read_text())
    assert record["base_model"]["sha256"] == sha256_of(smollm2_path)
    assert record["dataset_hash"] == fact_adapter["dataset"].content_hash()
    assert record["settings"]["rank"] == 8 and record["train_loss"] == pytest.approx(trip.result.train_loss)
    assert record["self_test"]["passed"] and (trip.adapter.peft / "adapter_model.safetensors").is_file()


def test_the_teacher_forced_check_catches_an_adapter_exported_without_the_qk_permutation(fact_adapter):
    trip = fact_adapter["trip"]
    good = trip.report.check("agreement")
    assert good.passed and good.details["adapter"]["kl_mean"] < good.details["base"]["kl_mean"] + 0.02
    wrong = export_adapter(fact_adapter["paths"], trip.job, "unpermuted", permute=False)
    _, check = drain(agreement_check(wrong, self_test_input(trip.job)))
    assert not check.passed, check.figure
    assert check.details["adapter"]["kl_mean"] > 2 * good.details["adapter"]["kl_mean"]
    assert "Q/K row order" in check.meaning
