"""How much memory a process holds: the one measure used by the status bar and the model hosts."""

from __future__ import annotations

import os
import sys


def resident_bytes(pid: int) -> int | None:
    """Resident memory of a process in bytes (Linux /proc; elsewhere only this process, via resource)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    if pid == os.getpid() and sys.platform != "win32":
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    return None
