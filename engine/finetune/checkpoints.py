"""Checkpoints on disk: written whole into a temporary folder, then renamed, so a kill never leaves half of one.

    checkpoints/step-0000040/   complete (its state.json is written last, before the rename)
    checkpoints/.tmp-step-0000060/   a checkpoint being written; removed at the next start

Pure file logic, used by the trainer child (which fills the folder with torch) and by the parent
(which reads where a job would resume).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

STATE_FILE = "state.json"
_COMPLETE = re.compile(r"^step-(\d{7})$")
KEEP = 2  # the last two: a damaged newest one still leaves one to resume from


def latest_checkpoint(root: Path) -> tuple[int, Path] | None:
    """(step, folder) of the newest complete checkpoint, or None."""
    best = None
    if not root.is_dir():
        return None
    for entry in root.iterdir():
        match = _COMPLETE.match(entry.name)
        if match and (entry / STATE_FILE).is_file():
            step = int(match.group(1))
            if best is None or step > best[0]:
                best = (step, entry)
    return best


def read_state(folder: Path) -> dict:
    return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))


def begin_checkpoint(root: Path, step: int) -> Path:
    """An empty temporary folder to write step `step`'s checkpoint into."""
    tmp = root / f".tmp-step-{step:07d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_checkpoint(tmp: Path, root: Path, step: int, state: dict, keep: int = KEEP) -> Path:
    """Write state.json last, flush everything to disk, rename into place; then drop older checkpoints."""
    _write_synced(tmp / STATE_FILE, json.dumps(state, indent=1))
    for path in tmp.iterdir():
        _fsync(path)
    final = root / f"step-{step:07d}"
    if final.exists():  # the same step written again (a stop right after a periodic checkpoint)
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync(root)
    complete = sorted((int(m.group(1)), e) for e in root.iterdir() if (m := _COMPLETE.match(e.name)))
    for _, old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_partial(root: Path) -> int:
    """Remove checkpoints a kill left half written; returns how many."""
    removed = 0
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(".tmp-"):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    """Flush a file or a folder's entries to disk (folders cannot be opened on Windows: skipped)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
