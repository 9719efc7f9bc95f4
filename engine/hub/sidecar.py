"""`<dest>.part.json`: what a download is (repo, revision, path, etag, sha256, size) and its state.

It is the source of truth for the download queue: the app and the CLI resume from it after a
crash or a restart. The bytes themselves are in `<dest>.part`; its size is how far we got.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

STATES = ("queued", "downloading", "paused", "failed", "verifying", "done")
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".part.json"


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX)


def sidecar_path(dest: Path) -> Path:
    return dest.with_name(dest.name + SIDECAR_SUFFIX)


def dest_of_sidecar(sidecar: Path) -> Path:
    return sidecar.with_name(sidecar.name[: -len(SIDECAR_SUFFIX)])


@dataclass
class PartRecord:
    repo: str
    revision: str
    path: str
    etag: str | None = None
    sha256: str | None = None
    size: int | None = None
    state: str = "queued"
    error: str | None = None
    commit: str | None = None
    updated_at: float = 0.0

    @classmethod
    def load(cls, sidecar: Path) -> PartRecord | None:
        """The record, or None when the file is missing or unreadable (a crash mid-write cannot cause
        that: writes are atomic)."""
        try:
            data = json.loads(Path(sidecar).read_text(encoding="utf-8"))
            known = {f.name for f in fields(cls)}
            record = cls(**{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError):
            return None
        return record if record.state in STATES else None

    def save(self, sidecar: Path, **changes) -> PartRecord:
        """Apply `changes` and write the file atomically and durably: the temp file is fsynced before
        os.replace and the folder after it, so after a power cut the sidecar on disk is whole and names
        the bytes the part holds (the download writes it before the part grows)."""
        for key, value in changes.items():
            setattr(self, key, value)
        if self.state not in STATES:
            raise ValueError(f"unknown download state {self.state!r}")
        self.updated_at = time.time()
        sidecar = Path(sidecar)
        tmp = sidecar.with_name(f"{sidecar.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(asdict(self), indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, sidecar)
        _fsync_folder(sidecar.parent)
        return self


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable. POSIX only: Windows cannot open a folder to fsync it."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
