"""One owner per home: an OS file lock on EMBER_HOME/ember.lock.

The window holds it while open; a writing CLI command takes it for its run. The OS drops the lock
when the process dies, so a killed app never leaves a stale lock behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from engine.errors import HomeLocked, HomeNotWritable


class HomeLock:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, purpose: str = "Ember") -> HomeLock:
        """Take the lock or raise HomeLocked naming who holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a data folder of another user, a read-only disk
            raise HomeNotWritable(f"Ember cannot write to its data folder {self.path.parent}: "
                                  f"{exc.strerror or exc}.") from exc
        if not _try_lock(fd):
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another Ember process"
            os.close(fd)
            raise HomeLocked(f"{self.path.parent} is in use by {holder}.")
        os.ftruncate(fd, 0)
        os.write(fd, f"{purpose} (pid {os.getpid()})".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            _unlock(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HomeLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
