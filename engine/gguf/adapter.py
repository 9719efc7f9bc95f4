"""LoRA adapters in GGUF: checked before llama.cpp sees them (a bad one can crash the host outright)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import BadModelFile
from engine.gguf.reader import read_header


@dataclass(frozen=True)
class AdapterInfo:
    path: str
    architecture: str
    adapter_type: str
    alpha: float | None
    tensor_count: int


def inspect_adapter(path: Path | str, model=None) -> AdapterInfo:
    """Read an adapter's header; with `model` (a ModelInfo), refuse one made for another architecture."""
    path = Path(path)
    header = read_header(path)
    meta = header.metadata
    info = AdapterInfo(str(path), str(meta.get("general.architecture", "unknown")),
                       str(meta.get("adapter.type", "")), meta.get("adapter.lora.alpha"), len(header.tensors))
    if meta.get("general.type") != "adapter" or info.adapter_type != "lora":
        raise BadModelFile(f"{path.name} is a GGUF file but not a LoRA adapter.",
                           "Pick an adapter exported for this model (general.type = adapter).")
    if model is not None and info.architecture != model.architecture:
        raise BadModelFile(f"The adapter {path.name} is for {info.architecture} models, not {model.architecture}.",
                           "Pick an adapter trained on this model.")
    return info
