"""The whole round trip, as the CLI and the page's Train button run it: job → plan → train → export → self-test.

    trip = yield from fine_tune(paths, base_gguf, dataset, settings, probes=[...], cancel=cancel)
    trip.adapter.gguf          # EMBER_HOME/adapters/<name>/adapter.gguf, for `ember chat --lora`
    trip.report.passed         # the self-test (selftest.py), also kept in the adapter's adapter.json

The steps are also usable one by one (job.py, `export_adapter`, `run_self_test`): the page shows the
plan and waits for the user before training.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.finetune.dataset import Dataset
from engine.finetune.errors import ExportFailed
from engine.finetune.export import AdapterRecord, store_adapter, update_record
from engine.finetune.job import FineTuneJob, TrainResult, new_job
from engine.finetune.plan import Plan
from engine.finetune.selftest import SelfTestInput, SelfTestReport, self_test
from engine.finetune.settings import TrainSettings
from engine.jobs import CancelToken, Progress
from engine.paths import EmberPaths

PROBES_FROM_DATA = 3
COMPARED_SEQUENCES = 3


@dataclass(frozen=True)
class RoundTrip:
    job: FineTuneJob
    plan: Plan
    result: TrainResult
    adapter: AdapterRecord | None  # None when training was stopped
    report: SelfTestReport | None
    seconds: float


def default_probes(dataset: Dataset, count: int = PROBES_FROM_DATA) -> list[str]:
    """Questions to watch when the user gave none: held-out ones first (the model never saw them)."""
    probes = []
    for example in [e for e in dataset.held_out + dataset.train if not e.general]:
        if example.kind == "chat":
            question = next((m["content"] for m in example.messages if m["role"] == "user"), "")
        else:
            question = "What do you know about this: " + " ".join(example.text.split()[:10]) + "?"
        if question and question not in probes:
            probes.append(question)
        if len(probes) == count:
            break
    return probes


def export_adapter(paths: EmberPaths, job: FineTuneJob, name: str | None = None, *,
                   permute: bool = True) -> AdapterRecord:
    """The job's trained adapter as a GGUF adapter in EMBER_HOME/adapters/ with its record."""
    if not (job.folder.adapter / "adapter_config.json").is_file():
        raise ExportFailed(f"The job {job.name} has no trained adapter yet.", "Train it to the end first.")
    config, status = job.config, job.status()
    record = {"base_model": config["base_model"], "dataset_hash": config["dataset_hash"], "mode": config["mode"],
              "dataset_counts": config.get("dataset_counts"), "settings": config["settings"],
              "train_loss": status.get("train_loss"), "eval_loss": status.get("eval_loss"),
              "steps": status.get("steps"), "job": str(job.folder.path)}
    adapter = store_adapter(paths, name or job.name, job.folder.adapter, job.base_model, record, permute=permute)
    job.folder.write_status("exported", adapter=str(adapter.folder))
    return adapter


def self_test_input(job: FineTuneJob, probes: Sequence[str] | None = None) -> SelfTestInput:
    dataset = Dataset.read(job.folder.dataset, job.config["mode"])
    mine = [e for e in dataset.held_out + dataset.train if not e.general][:COMPARED_SEQUENCES]
    return SelfTestInput(job.base_model, Path(job.config["dense_cache"]),
                         list(probes if probes is not None else job.config.get("probes") or default_probes(dataset)),
                         conversations=[list(e.messages) for e in mine if e.kind == "chat"],
                         texts=[e.text for e in mine if e.kind == "text"], threads=int(job.config.get("threads", 1)),
                         log_dir=job.folder.logs)


def run_self_test(adapter: AdapterRecord, given: SelfTestInput, cancel: CancelToken | None = None
                  ) -> Iterator[Progress]:
    """The self-test, its report kept in the adapter's record; returns the SelfTestReport."""
    report = yield from self_test(adapter, given, cancel)
    update_record(adapter, self_test=report.to_dict())
    return report


def fine_tune(paths: EmberPaths, base_model: Path | str, dataset: Dataset, settings: TrainSettings, *,
              probes: Sequence[str] = (), threads: int | None = None, name: str | None = None,
              cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Every step of the round trip; returns a RoundTrip (its adapter None if training was stopped)."""
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    probes = list(probes) or default_probes(dataset)
    job = yield from new_job(paths, base_model, dataset, settings, threads=threads, probes=probes, name=name,
                             cancel=cancel)
    plan = yield from job.plan(cancel)
    for line in plan.lines():
        yield Progress(0, None, "", line)
    result = yield from job.train(cancel)
    if result.state != "trained":
        return RoundTrip(job, plan, result, None, None, time.perf_counter() - started)
    yield Progress(0, None, "", "Exporting the GGUF adapter…")
    adapter = export_adapter(paths, job, name)
    report = yield from run_self_test(adapter, self_test_input(job, probes), cancel)
    return RoundTrip(job, plan, result, adapter, report, time.perf_counter() - started)
