"""The GGUF files of a Hub repo: size, SHA-256, quantization read from the name, split parts as one model.

The quantization shown before download comes from the file name (that is all the Hub tells);
after download the header says for sure (engine.gguf.inspect).
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import UnsafePath
from engine.gguf.splits import SPLIT_NAME
from engine.hub.client import hf_api, hub_errors
from engine.paths import check_relative_parts

log = logging.getLogger(__name__)

# Longest alternatives first; bounded by anything but a letter or digit ("-", ".", "_", start, end).
QUANT_NAME = re.compile(
    r"(?<![A-Za-z0-9])("
    r"IQ[1-4]_(?:XXS|XS|NL|S|M)|I?Q[1-8]_K(?:_(?:XXS|XS|XL|S|M|L))?|Q[1-8]_[01]|TQ[12]_0|MXFP4"
    r"|BF16|FP16|F16|FP32|F32|Q[1-8]"
    r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def parse_quantization(file_name: str) -> str | None:
    """'Llama-3-8B.Q4_K_M.gguf' -> 'Q4_K_M'; 'x-fp16.gguf' -> 'F16'; None when the name does not say."""
    folder, _, base = file_name.rpartition("/")
    found = QUANT_NAME.findall(SPLIT_NAME.sub(r"\g<stem>.gguf", base)) or QUANT_NAME.findall(folder)
    if not found:
        return None
    quant = found[-1].upper()
    return {"FP16": "F16", "FP32": "F32"}.get(quant, quant)


@dataclass(frozen=True)
class RepoFile:
    """One file of a repo as the Hub lists it; sha256 is the LFS hash (None for small git files)."""

    path: str
    size: int | None
    sha256: str | None = None


@dataclass(frozen=True)
class GgufFile:
    """One model in a repo: a single .gguf, or all parts of a split one (`-00001-of-0000N`)."""

    name: str  # what to show: the path, or for a split model its path without the part suffix
    parts: tuple[RepoFile, ...]
    quantization: str | None
    expected_parts: int = 1

    @property
    def size(self) -> int:
        return sum(p.size or 0 for p in self.parts)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p.path for p in self.parts)

    @property
    def is_split(self) -> bool:
        return self.expected_parts > 1

    @property
    def complete(self) -> bool:
        return len(self.parts) == self.expected_parts

    def to_dict(self) -> dict:
        return {"name": self.name, "quantization": self.quantization, "size": self.size,
                "parts": [{"path": p.path, "size": p.size, "sha256": p.sha256} for p in self.parts],
                "split": self.is_split, "complete": self.complete}


def is_safe_path(path: str) -> bool:
    try:
        check_relative_parts(path)
        return True
    except UnsafePath:
        return False


def group_gguf_files(files: Iterable[RepoFile]) -> list[GgufFile]:
    """GGUF files only, split parts folded into one entry, ordered by size (unsafe paths left out)."""
    singles: list[GgufFile] = []
    splits: dict[tuple[str, int], list[RepoFile]] = {}
    for f in files:
        if not f.path.lower().endswith(".gguf"):
            continue
        if not is_safe_path(f.path):
            log.warning("Ignoring the repo path %r: it would leave the models folder", f.path)
            continue
        folder, _, base = f.path.rpartition("/")
        match = SPLIT_NAME.match(base)
        if match:
            stem = f"{folder}/{match['stem']}" if folder else match["stem"]
            splits.setdefault((stem, int(match["total"])), []).append(f)
        else:
            singles.append(GgufFile(f.path, (f,), parse_quantization(f.path)))
    for (stem, total), parts in splits.items():
        parts.sort(key=lambda p: p.path)
        singles.append(GgufFile(f"{stem}.gguf", tuple(parts), parse_quantization(stem + ".gguf"), total))
    return sorted(singles, key=lambda g: (g.size, g.name))


def list_repo_files(repo_id: str, *, endpoint: str, revision: str | None = None,
                    token: str | bool | None = None) -> list[RepoFile]:
    """Every file of the repo with its size and LFS SHA-256 (one model_info call with blobs)."""
    with hub_errors(endpoint, repo_id, revision=revision):
        info = hf_api(endpoint, token).model_info(repo_id, revision=revision, files_metadata=True)
    return files_from_info(info)


def files_from_info(info) -> list[RepoFile]:
    """RepoFile entries from a huggingface_hub ModelInfo fetched with files_metadata=True."""
    return [RepoFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None) for s in info.siblings or []]


def list_gguf_files(repo_id: str, *, endpoint: str, revision: str | None = None,
                    token: str | bool | None = None) -> list[GgufFile]:
    return group_gguf_files(list_repo_files(repo_id, endpoint=endpoint, revision=revision, token=token))


def match_files(files: list[GgufFile], pattern: str) -> list[GgufFile]:
    """Models whose name or any part path equals `pattern`, else those matching it as a glob (any case)."""
    exact = [g for g in files if pattern == g.name or pattern in g.paths]
    if exact:
        return exact
    pattern = pattern.lower()
    return [g for g in files
            if any(fnmatch.fnmatchcase(p.lower(), pattern) for p in (g.name, *g.paths))
            or fnmatch.fnmatchcase(g.name.lower().rsplit("/", 1)[-1], pattern)]
