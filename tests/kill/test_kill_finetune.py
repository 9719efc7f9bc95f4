"""A fine-tune job killed at random points, then resumed. Killed on the app side (the driver process),
the trainer child is left on its own: it finishes its step, saves a checkpoint and exits. Killed itself
(a crash, the OOM killer), it loses at most the steps since its last checkpoint. Either way every
checkpoint on disk is whole, training goes on from the newest one (never from step 1, never past a step
it has not done), no half adapter is ever listed, and the last run ends with a complete adapter in
EMBER_HOME/adapters. A run started while a killed app's trainer is still finishing waits for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from engine.finetune import checkpoints
from engine.finetune.adapter_record import list_adapters
from engine.finetune.job import FineTuneJob, new_job
from engine.gguf.reader import read_header
from engine.paths import EmberPaths
from tests.kill.killing import kill_points, none_left, sigkill, start, wait_for, wait_gone
from tests.support.finetune_fixtures import TINY_SETTINGS, drain, tiny_dataset
from tests.support.processes import pid_alive

pytestmark = pytest.mark.timeout(400)
KILLS = 3
TOTAL = TINY_SETTINGS.max_steps  # 8 steps, a checkpoint every 2


class Driver:
    """tests/kill/finetune_driver.py on a job, its output lines read as they come."""

    def __init__(self, job: FineTuneJob) -> None:
        self.process = start(["-m", "tests.kill.finetune_driver", str(job.folder.path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def wait_line(self, wanted, timeout: float = 120) -> None:
        wait_for(lambda: any(wanted(line) for line in self.lines), timeout, f"a line {wanted}", self.process)

    def trainer_pid(self) -> int:
        return next(int(line.split()[1]) for line in self.lines if line.startswith("TRAINER"))

    def last_step(self) -> int:
        return max([int(line.split()[1]) for line in self.lines if line.startswith("STEP")], default=0)

    def finish(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        self.reader.join(10)
        self.process.stderr.close()
        return code


def tiny_job(home, smollm2_path, shared) -> FineTuneJob:
    _, job = drain(new_job(EmberPaths(home), smollm2_path, tiny_dataset(), TINY_SETTINGS, threads=1,
                           base_sha256=shared["sha256"]))
    return job


def checkpoints_whole(job: FineTuneJob) -> list[int]:
    """The steps of the complete checkpoints; each has its state and its weights."""
    steps = []
    for folder in sorted(job.folder.checkpoints.glob("step-*")):
        state = checkpoints.read_state(folder)
        assert state["step"] == int(folder.name.split("-")[1]) and state["total"] == TOTAL
        assert all((folder / name).stat().st_size > 0 for name in ("adapter.pt", "trainer.pt")), folder
        steps.append(state["step"])
    return steps


def adapters_whole(paths: EmberPaths) -> list:
    listed = list_adapters(paths)
    for adapter in listed:
        assert read_header(adapter.gguf).tensors
        assert (adapter.peft / "adapter_model.safetensors").stat().st_size > 0
    return listed


def finished_whole(driver: Driver, job: FineTuneJob, paths: EmberPaths, reached: int) -> None:
    """The run that ends the job: it went on after `reached`, and its adapter is listed whole."""
    assert driver.finish() == 0, driver.lines
    resumed = [e["step"] for e in job.folder.read_events() if e["type"] == "resumed"]
    assert resumed and resumed[-1] == reached  # the last run went on from the newest checkpoint
    steps = [int(line.split()[1]) for line in driver.lines if line.startswith("STEP")]
    assert steps == list(range(reached + 1, TOTAL + 1))
    adapter = next(line.split(" ", 1)[1] for line in driver.lines if line.startswith("ADAPTER"))
    assert [str(a.folder) for a in adapters_whole(paths)] == [adapter]
    assert json.loads(job.folder.status_path.read_text())["state"] == "exported"
    # the chart's history: every step once, in order, to the end: the trainer writes it itself, so
    # neither a step finished after its app died nor an event the app had not read yet is missing
    history = [e["step"] for e in job.history() if e["type"] == "step"]
    assert history == list(range(1, TOTAL + 1))


def test_finetune_killed_at_random_points_resumes_from_its_checkpoints(ember_home, smollm2_path, shared_dense):
    rng = kill_points("finetune")
    paths = EmberPaths(ember_home)
    _, job = drain(new_job(paths, smollm2_path, tiny_dataset(), TINY_SETTINGS, threads=1,
                           base_sha256=shared_dense["sha256"]))
    reached, began = 0, time.monotonic()
    for round_ in range(KILLS):
        driver = Driver(job)
        driver.wait_line(lambda line: line.startswith("TRAINER"))
        trainer = driver.trainer_pid()
        target = ["app", "trainer"][round_ % 2] if round_ < 2 else rng.choice(["app", "trainer"])
        goal = min(TOTAL - 3, reached + rng.randint(1, 2))  # a step still to come
        print(f"{time.monotonic() - began:5.1f} s round {round_}: the trainer runs", flush=True)
        driver.wait_line(lambda line, goal=goal: line == f"STEP {goal}")
        pause = rng.uniform(0.0, 0.6)
        time.sleep(pause)  # into the next step, or its checkpoint
        if target == "app":
            sigkill(driver.process)
        elif pid_alive(trainer):
            os.kill(trainer, signal.SIGKILL)
        driver.finish()
        assert wait_gone(trainer, 60), "the trainer outlived its job's process by a minute"
        assert not none_left(ember_home)
        steps, latest, last = checkpoints_whole(job), job.resume_step(), driver.last_step()
        print(f"{time.monotonic() - began:5.1f} s round {round_}: killed the {target} {pause:.2f} s after step "
              f"{goal} (step {last} shown); checkpoints {steps}", flush=True)
        assert reached <= latest <= last + 1, "a checkpoint went missing, or one of a step never trained"
        if target == "app":  # left alone, the trainer finished the step it was in and saved it
            assert latest >= last
        assert not adapters_whole(paths), "an adapter was listed before the job finished"
        reached = latest

    # Last: the app dies while its trainer is held mid-step, and comes back at once. The new run waits
    # for the old trainer to save its step, then goes on from that checkpoint to the end.
    first = Driver(job)
    first.wait_line(lambda line: line == f"STEP {reached + 1}")
    orphan = first.trainer_pid()
    os.kill(orphan, signal.SIGSTOP)
    try:
        sigkill(first.process)
        first.finish()
        second = Driver(job)
        second.wait_line(lambda line: line.startswith("NOTE Waiting for the previous run"))
        time.sleep(1.0)
        assert second.last_step() == 0 and pid_alive(orphan)  # it waits: no step while the other one lives
    finally:
        os.kill(orphan, signal.SIGCONT)
    assert wait_gone(orphan, 60)
    saved = job.resume_step()
    print(f"the held trainer saved step {saved} after its app died", flush=True)
    assert saved >= reached + 1  # the orphan finished its step and saved it
    kept = job.folder.read_events()  # and its events are in the job's history, though nobody read them
    assert {"step", "stopped"} <= {e["type"] for e in kept if e.get("step") == saved}
    finished_whole(second, job, paths, saved)
    assert not none_left(ember_home)
