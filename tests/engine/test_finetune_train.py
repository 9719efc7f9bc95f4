"""The trainer child on the real SmolLM2 (CPU): the measured plan, refusals before training, and a job
that is stopped, killed and resumed without losing its place."""

from __future__ import annotations

import json
import os
import signal

import pytest

from engine.finetune import checkpoints
from engine.finetune.dataset import build_dataset, qa_examples, text_examples
from engine.finetune.errors import (
    ArchitectureNotTrainable,
    DatasetEmpty,
    PlanTooBig,
    SequenceTooLong,
    TrainerStopped,
)
from engine.finetune.events import CheckpointSaved, Resumed, TrainStep
from engine.finetune.job import FineTuneJob, list_jobs, new_job
from engine.finetune.settings import TrainSettings
from engine.finetune.sources import read_text_files
from engine.jobs import CancelToken
from engine.paths import EmberPaths
from tests.support.finetune_fixtures import FACT_PAIRS, THREADS, TINY_SETTINGS, drain, tiny_dataset

pytestmark = pytest.mark.timeout(600)


def make_job(home, smollm2_path, shared, dataset=None, settings=TINY_SETTINGS, **kwargs) -> FineTuneJob:
    _, job = drain(new_job(EmberPaths(home), smollm2_path, dataset or tiny_dataset(), settings, threads=THREADS,
                           base_sha256=shared["sha256"], **kwargs))
    return job


def test_the_plan_is_measured_on_real_steps(finetune_session):
    plan = finetune_session["plan"]
    assert plan.backend.name == "LoRA (CPU)" and plan.backend.compute_dtype == "float32"
    assert plan.tokens.train_examples == 6 and plan.tokens.held_out_examples == 2
    assert 0 < plan.tokens.min_tokens <= plan.tokens.max_tokens <= TINY_SETTINGS.seq_len
    assert plan.total_steps == TINY_SETTINGS.max_steps
    assert plan.step_s > 0 and plan.total_s == pytest.approx(plan.step_s * plan.total_steps)
    # the estimate is an estimate: it must be of the measured peak's order, not equal to it
    assert plan.measured_peak / 2 < plan.memory.total < plan.measured_peak * 2
    text = "\n".join(plan.lines())
    assert "measured" in text and "LoRA (CPU)" in text
    messages = [p.message for p in finetune_session["plan_events"]]
    assert any("Converting" in m for m in messages)  # the session made the dense copy once
    assert finetune_session["job"].status()["state"] == "planned"


def test_refusals_before_any_training(ember_home, smollm2_path, shared_dense, minilm_gguf, tmp_path):
    paths = EmberPaths(ember_home)
    # an empty dataset, and whitespace-only files: refused while the dataset is built
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\n\t ", encoding="utf-8")
    report = read_text_files([blank])
    with pytest.raises(DatasetEmpty) as refused:
        build_dataset("raw", text_examples(report.passages), problems=report.problems)
    assert "blank.txt" in refused.value.message
    # a sequence length above the model's context (8192 tokens): refused when the job is made
    with pytest.raises(SequenceTooLong) as refused:
        drain(new_job(paths, smollm2_path, tiny_dataset(), TrainSettings(seq_len=9000)))
    assert "8192" in refused.value.message
    # more memory than the machine has: refused by the plan before its first step
    job = make_job(ember_home, smollm2_path, shared_dense)
    with pytest.raises(PlanTooBig) as refused:
        drain(job.plan(memory_free=300_000_000))
    assert "300.0 MB of memory free" in refused.value.message and refused.value.hint.startswith(("Try", "Even"))
    assert checkpoints.latest_checkpoint(job.folder.checkpoints) is None
    # answers that lie beyond the sequence length: nothing left to learn
    long_answers = build_dataset("qa", qa_examples([(q, "Maela Ostrund. " * 40) for q, _ in FACT_PAIRS]),
                                 held_out_fraction=0.0)
    job = make_job(ember_home, smollm2_path, shared_dense, long_answers,
                   TrainSettings.from_dict({**TINY_SETTINGS.to_dict(), "seq_len": 24}))
    with pytest.raises(DatasetEmpty) as refused:
        drain(job.plan())
    assert "24 tokens" in refused.value.message
    # an architecture transformers cannot load from GGUF (a BERT embedding model): the HF repository offered
    _, bert_job = drain(new_job(paths, minilm_gguf, tiny_dataset(), TrainSettings(seq_len=64, max_steps=1),
                                threads=1))
    with pytest.raises(ArchitectureNotTrainable) as refused:
        drain(bert_job.plan())
    assert "bert" in refused.value.message and "Hugging Face repository" in refused.value.hint


def test_stop_kill_and_resume_continue_from_the_last_checkpoint(ember_home, smollm2_path, shared_dense):
    job = make_job(ember_home, smollm2_path, shared_dense, probes=["Who built the Velkaran Bridge?"])
    # 1. Stop (the page's Stop button): the trainer finishes its step, writes a checkpoint, returns "stopped"
    cancel = CancelToken()
    events = job.train(cancel)
    seen = []
    for _ in events_until(events, seen, lambda p: isinstance(p, TrainStep) and p.step == 1):
        pass
    cancel.cancel()
    rest, stopped = drain(events)
    assert stopped.state == "stopped" and stopped.steps >= 1
    assert checkpoints.latest_checkpoint(job.folder.checkpoints)[0] == stopped.steps
    assert job.status()["state"] == "stopped"
    # 2. SIGKILL in the middle of training (a crash, the OOM killer): no half checkpoint, a typed error
    events = job.train()
    resumed_at = None
    for progress in events_until(events, seen, lambda p: isinstance(p, CheckpointSaved) and p.step > stopped.steps):
        if isinstance(progress, Resumed):
            resumed_at = progress.step
    assert resumed_at == stopped.steps
    killed_after = job.resume_step()
    os.kill(job.child_pid, signal.SIGKILL)
    with pytest.raises(TrainerStopped) as died:
        drain(events)
    assert "SIGKILL" in died.value.message
    assert job.resume_step() == killed_after > stopped.steps
    # 3. Resume: it continues from that checkpoint, not from step 1, and ends with the adapter
    seen, result = drain(job.train())
    steps = [p.step for p in seen if isinstance(p, TrainStep)]
    assert [p.step for p in seen if isinstance(p, Resumed)] == [killed_after]
    assert steps[0] == killed_after + 1 and steps[-1] == TINY_SETTINGS.max_steps
    assert result.state == "trained" and result.steps == TINY_SETTINGS.max_steps
    assert result.eval_loss is not None and result.train_loss is not None
    assert (job.folder.adapter / "adapter_model.safetensors").is_file()
    assert not [p for p in job.folder.checkpoints.iterdir() if p.name.startswith(".tmp")]
    history = job.history()
    assert [e["step"] for e in history if e["type"] == "step"] == list(range(1, TINY_SETTINGS.max_steps + 1))
    assert any(e["type"] == "sample" for e in history)
    assert [j.folder.name for j in list_jobs(EmberPaths(ember_home))] == [job.folder.name]
    assert json.loads(job.folder.status_path.read_text())["state"] == "trained"


def events_until(events, seen, condition):
    """Yield the generator's items until one meets `condition` (included); keep them in `seen`."""
    for progress in events:
        seen.append(progress)
        yield progress
        if condition(progress):
            return
    raise AssertionError("the condition never came")
