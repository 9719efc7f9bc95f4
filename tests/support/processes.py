"""PIDs of child processes that session-scoped fixtures own on purpose (not leaks), and a liveness check."""

from __future__ import annotations

import os

session_children: set[int] = set()


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
