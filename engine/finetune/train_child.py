"""The trainer child: PyTorch runs here and nowhere else.

    python -m engine.finetune.train_child plan JOB_FOLDER      measure a few real steps (plan.py)
    python -m engine.finetune.train_child train JOB_FOLDER     train, resuming from the last checkpoint
    python -m engine.finetune.train_child compare REQUEST.json the self-test's teacher-forced comparison

Started through the supervisor (engine/runtime/child.ChildProcess): events are JSON lines on stdout
(trainer/loop.py lists them), stderr goes to the job's log. When stdin closes (the user pressed
Stop, or the app went away) training finishes its current step, writes a checkpoint and exits; if
it has not exited STOP_GRACE_S later (a load that cannot be interrupted), it exits at once. A job has
one trainer at a time (a lock file in its folder): a new run waits for one a killed app left finishing.
A failure ends with one {"type": "error", "kind", "error", "hint"} event (finetune/errors.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from engine.errors import HomeLocked
from engine.finetune.errors import FineTuneError, PlanTooBig
from engine.finetune.job_folder import JobFolder
from engine.runtime.child_protocol import emit
from engine.store.lock import HomeLock

STOP_GRACE_S = 120.0
TRAINER_LOCK = "trainer.lock"  # in the job's folder, held by the one trainer of the job


def watch_stdin(stop: threading.Event) -> None:
    """Set `stop` when stdin closes; exit anyway STOP_GRACE_S later."""
    def watch() -> None:
        try:
            while os.read(sys.stdin.fileno(), 4096):
                pass
        except Exception:  # a closed or broken stdin means the same
            pass
        stop.set()
        deadline = threading.Timer(STOP_GRACE_S, lambda: os._exit(0))
        deadline.daemon = True  # a child that ends sooner must not wait for it at interpreter shutdown
        deadline.start()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def one_trainer(job: JobFolder, stop: threading.Event) -> HomeLock | None:
    """Take the job's lock, or wait for it; None when stopped while waiting.

    A trainer whose app was killed finishes its step and checkpoint on its own; a new run of the same
    job (the app started again, Resume pressed) waits for it instead of writing the same checkpoints at
    the same time."""
    lock = HomeLock(job.path / TRAINER_LOCK)
    deadline = time.monotonic() + STOP_GRACE_S + 30
    told = False
    while True:
        try:
            return lock.acquire("an Ember trainer")
        except HomeLocked as held:
            if time.monotonic() > deadline:
                raise FineTuneError(f"The job is still being trained by another process: {held.message}",
                                    "Wait for that process to end (or end it), then resume the job.") from None
        if not told:
            emit({"type": "stage", "message": "Waiting for the previous run of this job to save its checkpoint…"})
            told = True
        if stop.wait(0.2):
            return None


def keep_and_emit(job: JobFolder):
    """Write each of the job's history events to its folder, then send it to the app. The trainer is
    the one writer of that history: a step it finishes after its app was killed (it finishes the step
    and saves it) is on the chart, and so is an event the app had not read when it died."""
    def send(event: dict) -> None:
        job.keep_event(event)
        emit(event)
    return send


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ember-trainer")
    parser.add_argument("action", choices=("plan", "train", "compare"))
    parser.add_argument("target", help="the job folder (plan, train) or the request file (compare)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    watch_stdin(stop)
    emit({"type": "started", "pid": os.getpid(), "action": args.action})
    try:
        from engine.finetune.trainer import loop  # torch loads here, after the parent knows we started

        if args.action == "plan":
            loop.measure_plan(JobFolder(Path(args.target)), emit)
        elif args.action == "train":
            job = JobFolder(Path(args.target))
            lock = one_trainer(job, stop)
            if lock is not None:
                with lock:  # released at the end, or by the OS if this process is killed
                    loop.train_job(job, keep_and_emit(job), stop)
        else:
            from engine.finetune.trainer import compare

            compare.run_request(Path(args.target), emit)
    except FineTuneError as error:
        emit(error.to_event())
        return 1
    except Exception as exc:
        traceback.print_exc()
        if _out_of_memory(exc):
            emit(PlanTooBig(f"Training ran out of memory: {exc}".strip()[:500]).to_event())
        else:
            emit({"type": "error", "kind": "failed", "error": f"{type(exc).__name__}: {exc}"[:1000],
                  "hint": "See the job's log for details."})
        return 1
    return 0


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # no interpreter shutdown: a stuck thread (the stdin watcher) must not keep us alive
