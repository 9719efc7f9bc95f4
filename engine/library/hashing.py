"""SHA-256 of a file: as a slow job for a model (a 10 GB file takes about a minute), or at once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from engine.jobs import CancelToken, Progress

CHUNK = 4 * 2**20


def sha256_file(path: Path, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Yield Progress while hashing; the generator's return value is the hex digest (None if cancelled)."""
    path = Path(path)
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if cancel is not None and cancel.cancelled:
                return None
            digest.update(chunk)
            done += len(chunk)
            yield Progress(done, total, "B", f"Checking {path.name}")
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """The hex digest at once, without progress (files hashed one after another, such as documents)."""
    hashing = sha256_file(path)
    while True:
        try:
            next(hashing)
        except StopIteration as done:
            return done.value
