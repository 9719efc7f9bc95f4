"""Which weight files Ember reads: safetensors only. PyTorch pickles (`.bin`, `.pt`, `.pth`, `.ckpt`, `.pkl`) never.

Loading a pickle runs whatever code its author put in it; a safetensors file is only numbers and a
JSON header. So an adapter or a model folder that holds its weights only as a pickle is refused with
a message that says how to get a safetensors copy. Ember's own training checkpoints are read with
`torch.load(weights_only=True)` (tensors and plain values only), and `tests/hostile` checks the source
for any other kind of load.
"""

from __future__ import annotations

from pathlib import Path

from engine.finetune.errors import ExportFailed

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def pickle_files(folder: Path) -> list[Path]:
    """The PyTorch pickle files in `folder` (not its subfolders), by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def require_safetensors(folder: Path, weights_name: str = "adapter_model.safetensors") -> Path:
    """The folder's `weights_name`; refuses a folder whose weights are only a pickle, saying why and what to do."""
    folder = Path(folder)
    weights = folder / weights_name
    if weights.is_file():
        return weights
    pickles = pickle_files(folder)
    if pickles:
        raise ExportFailed(f"{folder.name} holds {pickles[0].name}, a PyTorch pickle file: loading one can run any "
                           f"code its author put in it, so Ember reads only safetensors ({weights_name}).",
                           "Save the adapter again with safetensors (peft's save_pretrained does by default), "
                           "on the machine that trained it.")
    raise ExportFailed(f"{folder} has no {weights_name}.", "Save the adapter with safetensors (peft's default).")
