"""What every kill test shares: a seeded, printed choice of kill points; SIGKILL and wait; the database checks.

The seed is fixed (EMBER_KILL_SEED overrides it) and printed, so a failing run can be replayed exactly:
`EMBER_KILL_SEED=<seed> pytest tests/kill`.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.processes import pid_alive

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("EMBER_KILL_SEED", "1313"))


def kill_points(job: str) -> random.Random:
    """The random source of one job's kill points, printed so that a failure says how to replay it."""
    print(f"kill seed for {job}: EMBER_KILL_SEED={SEED}", flush=True)
    return random.Random(f"{SEED}-{job}")


def start(argv: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    """A Python process of this checkout (the worktree's engine, not an installed one)."""
    env = dict(env or os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, **kwargs)


def sigkill(process: subprocess.Popen) -> int:
    """SIGKILL (no handler, no cleanup, no atexit) and reap it. -> its return code (negative if killed)."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    return process.wait(timeout=30)


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             process: subprocess.Popen | None = None) -> None:
    """Poll `condition` until it holds; fail with `what` if it does not within `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process ended first (exit {process.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.02)


def wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


def read_only(db: Path) -> sqlite3.Connection:
    """A reader that changes nothing: no recovery, no migration, no checkpoint of somebody's WAL."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def integrity(db: Path) -> str:
    """PRAGMA integrity_check of a database a killed process left (its WAL included)."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def processes_of(home: Path) -> set[int]:
    """Every living process started with EMBER_HOME=home (children and grandchildren, orphaned or not),
    this test's own process left out."""
    marker = f"EMBER_HOME={home}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0") and pid_alive(int(entry.name)):
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def none_left(home: Path, timeout: float = 15.0) -> set[int]:
    """Wait for the processes of `home` to end (a killed parent's children exit by themselves). -> those left."""
    deadline = time.monotonic() + timeout
    left = processes_of(home)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_of(home)
    return left
