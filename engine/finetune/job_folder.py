"""A fine-tune job's folder under EMBER_HOME/finetune/<job>/, shared by the app and the trainer child.

    config.json        what to train: base model (path, SHA-256), mode, settings, threads, probes
    dataset/           train.jsonl, held_out.jsonl (dataset.Dataset.write)
    checkpoints/       step-NNNNNNN/ (checkpoints.py)
    adapter/           the final peft folder (adapter_config.json, adapter_model.safetensors)
    events.jsonl       the trainer's steps, evaluations, samples, checkpoints and stops (the page redraws
                       its chart from it after a restart)
    status.json        planned / training / stopped / failed / trained / exported, and the last figures
    logs/              the trainer's stderr, one file per run
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

CONFIG_VERSION = 1
# The trainer's events that make a job's history (its chart, where it stopped), kept in events.jsonl by
# the trainer itself (train_child.keep_and_emit), so none is lost when the app dies.
KEPT_EVENTS = ("step", "eval", "sample", "checkpoint", "resumed", "stopped", "done")


@dataclass(frozen=True)
class JobFolder:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def dataset(self) -> Path:
        return self.path / "dataset"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def read_config(self) -> dict:
        return json.loads(self.config_path.read_text(encoding="utf-8"))

    def write_config(self, config: dict) -> None:
        write_json_atomic(self.config_path, {"version": CONFIG_VERSION, **config})

    def read_status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"state": "new"}

    def write_status(self, state: str, **figures) -> None:
        write_json_atomic(self.status_path, {**self.read_status(), "state": state, "updated_at": time.time(),
                                             **figures})

    def append_event(self, event: dict) -> None:
        with open(self.events, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")

    def keep_event(self, event: dict) -> None:
        """Append the event if it is one of the job's history (KEPT_EVENTS)."""
        if event.get("type") in KEPT_EVENTS:
            self.append_event(event)

    def read_events(self) -> list[dict]:
        if not self.events.exists():
            return []
        out = []
        for line in self.events.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # a line cut by a kill
                continue
        return out


def write_json_atomic(path: Path, value) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
