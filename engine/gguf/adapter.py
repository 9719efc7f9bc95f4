"""LoRA adapters in GGUF: checked before llama.cpp sees them (a bad one can crash the host outright)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import BadModelFile
from engine.gguf.reader import read_header
from engine.gguf.splits import split_parts


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
    if model is not None:
        _check_shapes(path, header.tensors, Path(model.path))
    return info


def _check_shapes(path: Path, adapter_tensors, model_path: Path) -> None:
    """Each `X.lora_a` / `X.lora_b` must fit the model's tensor X, as llama.cpp requires (ne[0] of A, ne[1] of B).

    An adapter trained on another model of the same architecture (another size) has other widths: it is
    refused here, with the first tensor that does not fit, before llama.cpp sees it.
    """
    base = {t.name: t.shape for part in split_parts(model_path) for t in read_header(part).tensors}
    for tensor in adapter_tensors:
        name, dot, which = tensor.name.rpartition(".lora_")
        if not dot or which not in ("a", "b"):
            continue
        shape = base.get(name)
        if shape is None:
            raise BadModelFile(f"The adapter {path.name} was made for another model: {model_path.name} has no "
                               f"tensor {name}.", "Pick an adapter trained on this model.")
        axis = 0 if which == "a" else 1
        want = shape[axis] if axis < len(shape) else 1
        got = tensor.shape[axis] if axis < len(tensor.shape) else 1
        if got != want:
            raise BadModelFile(f"The adapter {path.name} was made for another model: its {name} is {got} wide, "
                               f"{model_path.name}'s is {want}.", "Pick an adapter trained on this model.")
