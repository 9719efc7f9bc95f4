"""PIDs of child processes that session-scoped fixtures own on purpose (not leaks), a liveness check, and a
process's living children (for the tests and benchmarks/soak.py)."""

from __future__ import annotations

import os
from pathlib import Path

session_children: set[int] = set()


def kept_children() -> set[int]:
    """Children that live as long as the test process: session hosts and the one template child."""
    from engine.runtime import template_process

    shared = template_process._shared
    return session_children | ({shared.pid} if shared is not None and shared.pid else set())


def pid_alive(pid: int) -> bool:
    """True while a process with this PID runs (a zombie, dead but not yet reaped, counts as gone)."""
    if not os.path.isdir("/proc"):  # macOS: ask the kernel (a zombie still answers)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def child_pids(pid: int) -> set[int]:
    """The living (not zombie) child processes of `pid` (Linux /proc; empty elsewhere)."""
    found = set()
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found
