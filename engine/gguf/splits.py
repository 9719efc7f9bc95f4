"""Split GGUF models: `name-00001-of-00003.gguf` and its siblings are one model."""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import BadModelFile

SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$", re.I)


def split_parts(path: Path) -> list[Path]:
    """All present parts of a split GGUF (`name-00001-of-00003.gguf`), or just the file."""
    match = SPLIT_NAME.match(path.name)
    if not match:
        return [path]
    total = int(match["total"])
    parts = [path.with_name(f"{match['stem']}-{i:05d}-of-{match['total']}.gguf") for i in range(1, total + 1)]
    return [p for p in parts if p.is_file()]


def missing_parts(path: Path) -> list[Path]:
    """The parts of a split GGUF that are not there (empty for a whole file or a complete split)."""
    match = SPLIT_NAME.match(path.name)
    if not match:
        return []
    total = int(match["total"])
    parts = [path.with_name(f"{match['stem']}-{i:05d}-of-{match['total']}.gguf") for i in range(1, total + 1)]
    return [p for p in parts if not p.is_file()]


def require_every_part(path: Path) -> None:
    """Raise BadModelFile naming the missing parts: llama.cpp cannot load a split model without all of them."""
    missing = missing_parts(Path(path))
    if missing:
        total = SPLIT_NAME.match(Path(path).name)["total"]
        names = ", ".join(p.name for p in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise BadModelFile(f"{Path(path).name} is one part of a model split in {int(total)} files; "
                           f"{len(missing)} {'is' if len(missing) == 1 else 'are'} missing: {names}.",
                           "Download the missing parts into the same folder (or the model again).")
