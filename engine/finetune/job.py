"""A fine-tune job from the app's side: make it, plan it, train it (and resume it), all as generators.

    job = yield from new_job(paths, base_gguf, dataset, settings, probes=[...], cancel=cancel)
    plan = yield from job.plan(cancel)        # Plan, or a typed refusal before any training
    result = yield from job.train(cancel)     # TrainResult; resumes from the last checkpoint

Each runs the trainer child (train_child.py) through the generic supervisor and turns its events
into Progress (events.py), so the app runs them with its generic worker. Cancelling `train` closes
the child's stdin: it finishes its step, writes a checkpoint, and `train` returns a result whose
state is "stopped"; the next `train` continues from there. PyTorch never loads in this process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.child_command import child_command
from engine.errors import BadModelFile, Cancelled
from engine.finetune import checkpoints
from engine.finetune.availability import require_training_stack
from engine.finetune.dataset import Dataset
from engine.finetune.errors import FineTuneError, TrainerStopped, error_from_event
from engine.finetune.events import to_progress
from engine.finetune.job_folder import JobFolder
from engine.finetune.plan import (
    DeviceInfo,
    ModelShape,
    Plan,
    TokenStats,
    check_memory,
    check_sequence_length,
    choose_backend,
    estimate_memory,
)
from engine.finetune.settings import TrainSettings
from engine.gguf.inspect import inspect_gguf
from engine.gguf.reader import read_header
from engine.jobs import CancelToken, Progress
from engine.library.hashing import sha256_file
from engine.paths import EmberPaths
from engine.runtime.child import ChildProcess
from engine.runtime.hardware import default_threads

STOP_TIMEOUT_S = 90.0  # a stopped trainer finishes its step and writes a checkpoint first


def finetune_root(paths: EmberPaths) -> Path:
    return paths.home / "finetune"


def dense_cache(paths: EmberPaths, sha256: str) -> Path:
    """Where the dense PyTorch copy of a GGUF is kept (one per file content)."""
    return finetune_root(paths) / "base" / sha256[:32]


def model_shape(gguf_path: Path) -> ModelShape:
    info = inspect_gguf(gguf_path)
    ffn = read_header(gguf_path).metadata.get(f"{info.architecture}.feed_forward_length")
    return ModelShape.from_model_info(info, ffn if isinstance(ffn, int) else None)


@dataclass(frozen=True)
class TrainResult:
    state: str  # "trained" or "stopped"
    steps: int  # steps done so far
    total_steps: int
    train_loss: float | None = None  # mean of the last steps
    first_loss: float | None = None
    eval_loss: float | None = None
    seconds: float = 0.0
    adapter: Path | None = None  # the peft folder, once trained


def new_job(paths: EmberPaths, base_model: Path | str, dataset: Dataset, settings: TrainSettings, *,
            threads: int | None = None, probes: Sequence[str] = (), name: str | None = None,
            base_sha256: str | None = None, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Check what can be checked at once, hash the base, write the job folder; returns the FineTuneJob."""
    settings = settings.checked()
    base_model = Path(base_model)
    shape = model_shape(base_model)  # BadModelFile when it is not a model
    check_sequence_length(settings, shape)
    if base_sha256 is None:
        base_sha256 = yield from sha256_file(base_model, cancel)
        if base_sha256 is None:
            raise Cancelled("Stopped.")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name or base_model.stem).strip("-")[:40] or "job"
    folder = JobFolder(finetune_root(paths) / "jobs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}")
    suffix = 1
    while folder.path.exists():
        suffix += 1
        folder = JobFolder(folder.path.with_name(f"{folder.path.name.rsplit('~', 1)[0]}~{suffix}"))
    folder.path.mkdir(parents=True)
    dataset.write(folder.dataset)
    folder.write_config({
        "name": name or base_model.stem, "created_at": time.time(), "mode": dataset.mode,
        "base_model": {"path": str(base_model.resolve()), "sha256": base_sha256, "architecture": shape.architecture,
                       "context_length": shape.context, "parameters": shape.parameters},
        "dense_cache": str(dense_cache(paths, base_sha256)), "settings": settings.to_dict(),
        "threads": threads or default_threads(), "probes": [p for p in probes if p.strip()],
        "dataset_hash": dataset.content_hash(), "dataset_counts": dataset.counts.__dict__,
    })
    folder.write_status("new")
    yield Progress(1, 1, "", f"Job {folder.name} created")
    return FineTuneJob(folder)


def list_jobs(paths: EmberPaths) -> list[FineTuneJob]:
    root = finetune_root(paths) / "jobs"
    if not root.is_dir():
        return []
    return [FineTuneJob(JobFolder(p)) for p in sorted(root.iterdir()) if (p / "config.json").is_file()]


class FineTuneJob:
    def __init__(self, folder: JobFolder | Path) -> None:
        self.folder = folder if isinstance(folder, JobFolder) else JobFolder(Path(folder))
        self.config = self.folder.read_config()
        self.child_pid: int | None = None  # the running trainer's process id (None between runs)

    @property
    def name(self) -> str:
        return self.config.get("name", self.folder.name)

    @property
    def settings(self) -> TrainSettings:
        return TrainSettings.from_dict(self.config["settings"])

    @property
    def base_model(self) -> Path:
        return Path(self.config["base_model"]["path"])

    def status(self) -> dict:
        return self.folder.read_status()

    def resume_step(self) -> int:
        """The step a `train` would continue after (0: from the start)."""
        latest = checkpoints.latest_checkpoint(self.folder.checkpoints)
        return latest[0] if latest else 0

    def history(self) -> list[dict]:
        """The step, eval and sample events of every run, the latest run's winning where they overlap."""
        by_key: dict[tuple, dict] = {}
        for event in self.folder.read_events():
            if event.get("type") in ("step", "eval", "sample"):
                by_key[(event["type"], event["step"])] = event
        return sorted(by_key.values(), key=lambda e: (e["step"], e["type"]))

    # --- plan -----------------------------------------------------------------------------------
    def plan(self, cancel: CancelToken | None = None, *, memory_free: int | None = None) -> Iterator[Progress]:
        """Measure the plan in the trainer child; returns a Plan or raises the refusal.

        `memory_free` replaces the free memory the trainer reports (what a smaller machine would have)."""
        require_training_stack()
        settings = self.settings
        shape = model_shape(self.base_model)
        check_sequence_length(settings, shape)
        found: dict = {}

        def check(event: dict) -> None:
            if event.get("type") == "device":
                device = DeviceInfo.from_dict(event["device"])
                if memory_free is not None:
                    device = DeviceInfo.from_dict({**device.to_dict(), "memory_free": memory_free})
                found["device"] = device
            elif event.get("type") == "dataset":
                found["tokens"] = TokenStats.from_dict(event)
                device = found["device"]
                backend = choose_backend(device)
                effective = TrainSettings.from_dict({**settings.to_dict(),
                                                     "seq_len": min(settings.seq_len, found["tokens"].max_tokens)})
                found["memory"] = estimate_memory(shape, effective, backend)
                check_memory(found["memory"], device, effective, shape, backend)  # refused before any step
            elif event.get("type") == "measured":
                found["measured"] = event

        yield from self._run("plan", cancel, check)
        if "measured" not in found:
            raise Cancelled("Stopped.")
        device, measured = found["device"], found["measured"]
        plan = Plan(choose_backend(device), device, settings, found["tokens"], measured["total_steps"],
                    found["memory"], measured.get("peak_bytes"), measured.get("step_s"))
        self.folder.write_status("planned", plan=plan.to_dict())
        return plan

    # --- train ----------------------------------------------------------------------------------
    def train(self, cancel: CancelToken | None = None) -> Iterator[Progress]:
        """Train from the last checkpoint to the end (or until cancelled); returns a TrainResult."""
        require_training_stack()
        outcome: dict = {}

        def note(event: dict) -> None:  # the trainer itself keeps the job's history (train_child)
            if event.get("type") in ("step", "stopped", "done", "checkpoint"):
                outcome[event["type"]] = event

        self.folder.write_status("training")
        try:
            yield from self._run("train", cancel, note)
        except FineTuneError as error:
            self.folder.write_status("failed", error=error.message, hint=error.hint)
            raise
        if "done" in outcome:
            done = outcome["done"]
            result = TrainResult("trained", done["steps"], done["steps"], done.get("train_loss"),
                                 done.get("first_loss"), done.get("eval_loss"), done.get("seconds", 0.0),
                                 self.folder.adapter)
            self.folder.write_status("trained", train_loss=result.train_loss, eval_loss=result.eval_loss,
                                     steps=result.steps)
            return result
        last = outcome.get("stopped") or outcome.get("checkpoint") or outcome.get("step") or {}
        step = self.resume_step()
        self.folder.write_status("stopped", step=step)
        return TrainResult("stopped", step, int(last.get("total", 0)))

    # --- the child ------------------------------------------------------------------------------
    def _run(self, action: str, cancel: CancelToken | None, on_event) -> Iterator[Progress]:
        """Run the trainer child for `action`, yielding Progress for its events; raise its typed error."""
        cancel = cancel or CancelToken()
        child = ChildProcess(child_command("engine.finetune.train_child", action, str(self.folder.path)),
                             label=f"trainer-{action}-{self.folder.name}", log_dir=self.folder.logs).start()
        self.child_pid = child.pid
        error: FineTuneError | None = None
        total = None
        stopping = False
        try:
            while not child.finished:
                if cancel.cancelled and not stopping:
                    stopping = True
                    yield Progress(0, None, "", "Stopping after this step…" if action == "train" else "Stopping…")
                    # training: stdin closes, a checkpoint, then exit; a plan has nothing to keep
                    child.stop(STOP_TIMEOUT_S if action == "train" else 5.0)
                event = child.next_event(0.2)
                if event is None:
                    continue
                if event.get("type") == "error":
                    error = error_from_event(event, str(child.log_path) if child.log_path else None)
                    continue
                try:
                    on_event(event)
                except FineTuneError as refusal:
                    child.stop(10.0)
                    raise refusal from None
                total = event.get("total", total)
                progress = to_progress(event, total)
                if progress is not None:
                    yield progress
        finally:
            if child.alive:
                child.stop(STOP_TIMEOUT_S if stopping and action == "train" else 10.0)
            child.wait(10)
            self.child_pid = None
        if error is not None:
            raise error
        code = child.returncode
        if code not in (0, None) and not (stopping and child.death() and child.death().stopped):
            death = child.death()
            raise TrainerStopped(f"The trainer stopped: {death.reason if death else f'exit code {code}'}.",
                                 log_path=str(child.log_path) if child.log_path else None)


def check_base_model(path: Path | str) -> ModelShape:
    """The shape of a GGUF the user picked as the base, or BadModelFile."""
    path = Path(path)
    if not path.is_file():
        raise BadModelFile(f"{path} does not exist.", "Pick a GGUF model from the library.")
    return model_shape(path)
