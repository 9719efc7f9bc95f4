"""A fine-tune job run as the app runs it: train from the last checkpoint to the end (the trainer child does
the work), then export the adapter into EMBER_HOME/adapters. Prints `TRAINER <pid>` once the trainer
child reports, `STEP <n>` and `CHECKPOINT <n>` as they come, `NOTE <message>` for other news, and
`ADAPTER <folder>` at the end.

    python -m tests.kill.finetune_driver JOB_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.finetune.events import CheckpointSaved, TrainStep
from engine.finetune.job import FineTuneJob
from engine.finetune.pipeline import export_adapter
from engine.paths import EmberPaths


def main(argv: list[str] | None = None) -> int:
    job = FineTuneJob(Path((argv or sys.argv[1:])[0]))
    events, shown = job.train(), False
    while True:
        try:
            progress = next(events)
        except StopIteration as done:
            result = done.value
            break
        if not shown and job.child_pid is not None:
            print(f"TRAINER {job.child_pid}", flush=True)
            shown = True
        if isinstance(progress, TrainStep):
            print(f"STEP {progress.step}", flush=True)
        elif isinstance(progress, CheckpointSaved):
            print(f"CHECKPOINT {progress.step}", flush=True)
        elif progress.message:
            print(f"NOTE {progress.message}", flush=True)
    if result.state != "trained":
        print(f"STOPPED {result.steps}", flush=True)
        return 1
    adapter = export_adapter(EmberPaths.from_env(), job)
    print(f"ADAPTER {adapter.folder}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
