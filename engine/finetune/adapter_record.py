"""What EMBER_HOME/adapters/ holds, read without the exporter's heavy modules (gguf, numpy): the chat's
Adapter box lists adapters before the window has painted.

    EMBER_HOME/adapters/<name>/adapter.gguf   the GGUF LoRA adapter llama.cpp loads
                               peft/          the same adapter for transformers + peft
                               adapter.json   its record: base model, dataset hash, settings, losses, self-test
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.paths import EmberPaths


@dataclass(frozen=True)
class AdapterRecord:
    """What EMBER_HOME/adapters/<name>/ holds."""

    name: str
    folder: Path
    gguf: Path
    peft: Path
    record: dict

    @property
    def json_path(self) -> Path:
        return self.folder / "adapter.json"


def open_adapter(folder: Path) -> AdapterRecord:
    record = json.loads((folder / "adapter.json").read_text(encoding="utf-8"))
    return AdapterRecord(folder.name, folder, folder / "adapter.gguf", folder / "peft", record)


def list_adapters(paths: EmberPaths) -> list[AdapterRecord]:
    if not paths.adapters.is_dir():
        return []
    return [open_adapter(p) for p in sorted(paths.adapters.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (p / "adapter.json").is_file()]
