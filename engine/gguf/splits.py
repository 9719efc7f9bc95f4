"""Split GGUF models: `name-00001-of-00003.gguf` and its siblings are one model."""

from __future__ import annotations

import re
from pathlib import Path

SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$", re.I)


def split_parts(path: Path) -> list[Path]:
    """All present parts of a split GGUF (`name-00001-of-00003.gguf`), or just the file."""
    match = SPLIT_NAME.match(path.name)
    if not match:
        return [path]
    total = int(match["total"])
    parts = [path.with_name(f"{match['stem']}-{i:05d}-of-{match['total']}.gguf") for i in range(1, total + 1)]
    return [p for p in parts if p.is_file()]
