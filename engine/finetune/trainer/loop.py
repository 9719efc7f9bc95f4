"""The trainer child's two jobs: measure a plan on a few real steps, and train with checkpoints.

Events (one JSON line each, see engine/finetune/events.py for what the parent makes of them):
  stage, device, dataset              while loading
  measured                            the plan's figures (plan only)
  resumed {step}                      training continues after a checkpoint
  step {step, total, loss, lr, tokens, tokens_per_s, step_s, eta_s, memory}
  eval {step, eval_loss}              at every evaluation interval and at the end
  sample {step, answers}              the probe questions' answers at each evaluation
  checkpoint {step}                   a complete checkpoint is on disk
  stopped {step}                      stdin closed: checkpointed and stopping
  done {steps, train_loss, first_loss, eval_loss, seconds}
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import time

from engine.finetune import checkpoints
from engine.finetune.errors import FineTuneError
from engine.finetune.job_folder import JobFolder
from engine.finetune.trainer.memory import peak_bytes, reset_peak
from engine.finetune.trainer.run import TrainingRun

MEASURED_STEPS = 2  # after one warm-up step (allocations, first kernel calls)
RECENT = 10  # steps the ETA and the final train loss are averaged over


def measure_plan(job: JobFolder, emit) -> None:
    config = job.read_config()
    run = TrainingRun.build(config, job.dataset, emit)
    emit({"type": "stage", "message": "Measuring a few real steps…"})
    longest = sorted(range(len(run.train)), key=lambda i: -len(run.train[i].input_ids))
    per_step = run.settings.examples_per_step
    indices = [longest[i % len(longest)] for i in range(per_step)]  # the worst case for memory and time
    run.step(1, indices)
    reset_peak(run.torch_device)
    times = [run.step(2 + i, indices)[2] for i in range(MEASURED_STEPS)]
    emit({"type": "measured", "step_s": statistics.median(times), "peak_bytes": peak_bytes(run.torch_device),
          "total_steps": run.total_steps, "tokens_per_step": sum(len(run.train[i].input_ids) for i in indices)})


def train_job(job: JobFolder, emit, stop) -> None:
    """Train from the last checkpoint (or the start) to the end, or until `stop` is set."""
    config = job.read_config()
    fingerprint = _fingerprint(config)
    checkpoints.remove_partial(job.checkpoints)
    run = TrainingRun.build(config, job.dataset, emit)
    settings, total = run.settings, run.total_steps
    probes = [q for q in config.get("probes", []) if q.strip()]
    start, history = 0, []
    latest = checkpoints.latest_checkpoint(job.checkpoints)
    if latest is not None:
        step, folder = latest
        state = checkpoints.read_state(folder)
        if state.get("fingerprint") != fingerprint:
            raise FineTuneError("The job's data or settings changed after its checkpoints were written.",
                                "Start a new job with the new data or settings.")
        run.restore(folder)
        start, history = step, state.get("losses", [])
        emit({"type": "resumed", "step": step, "total": total})
    reset_peak(run.torch_device)  # the steps' peak, not the load's (the plan measures it the same way)
    started = time.perf_counter()
    recent: list[float] = []
    last_saved = start
    step = start
    for step in range(start + 1, total + 1):
        loss, tokens, seconds = run.step(step)
        history.append(loss)
        recent = (recent + [seconds])[-RECENT:]
        eta = statistics.fmean(recent) * (total - step)
        emit({"type": "step", "step": step, "total": total, "loss": loss, "lr": run.learning_rate, "tokens": tokens,
              "tokens_per_s": tokens / seconds if seconds else None, "step_s": seconds, "eta_s": eta,
              "memory": peak_bytes(run.torch_device)})
        if step % settings.eval_every == 0 or step == total:
            _evaluate(run, step, probes, emit)
        stopping = stop.is_set()
        if step % settings.checkpoint_every == 0 or step == total or stopping:
            _checkpoint(job, run, step, fingerprint, history, emit)
            last_saved = step
        if stopping:
            emit({"type": "stopped", "step": step, "total": total})
            return
    if last_saved != step:
        _checkpoint(job, run, step, fingerprint, history, emit)
    _save_adapter(job, run)
    final_eval = run.evaluate()
    tail = history[-RECENT:] or [float("nan")]
    emit({"type": "done", "steps": total, "train_loss": statistics.fmean(tail), "first_loss": history[0] if history
          else None, "eval_loss": final_eval, "seconds": time.perf_counter() - started,
          "trained_steps": total - start})


def _evaluate(run: TrainingRun, step: int, probes: list[str], emit) -> None:
    eval_loss = run.evaluate()
    if eval_loss is not None:
        emit({"type": "eval", "step": step, "eval_loss": eval_loss})
    if probes:
        answers = run.answer(probes)
        emit({"type": "sample", "step": step,
              "answers": [{"question": q, "answer": a} for q, a in zip(probes, answers, strict=True)]})


def _checkpoint(job: JobFolder, run: TrainingRun, step: int, fingerprint: str, history: list[float], emit) -> None:
    tmp = checkpoints.begin_checkpoint(job.checkpoints, step)
    run.save(tmp)
    checkpoints.commit_checkpoint(tmp, job.checkpoints, step, {"step": step, "total": run.total_steps,
                                                                "fingerprint": fingerprint, "losses": history})
    emit({"type": "checkpoint", "step": step, "total": run.total_steps})


def _save_adapter(job: JobFolder, run: TrainingRun) -> None:
    tmp = job.path / ".adapter.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    run.save_adapter(tmp)
    shutil.rmtree(job.adapter, ignore_errors=True)
    tmp.replace(job.adapter)


def _fingerprint(config: dict) -> str:
    """What a checkpoint must have been trained with to be resumed: the data and the settings."""
    key = {"dataset": config.get("dataset_hash"), "settings": config.get("settings"),
           "base": config.get("base_model", {}).get("sha256"), "mode": config.get("mode")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
