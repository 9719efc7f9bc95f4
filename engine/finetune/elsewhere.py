"""Beyond one machine: "export job" writes a folder that trains on a bigger box; "import adapter" brings
a peft adapter back through the same export and self-test as one trained here.

    folder = export_job_folder(dataset, settings, out_dir, base_gguf)   # then, there:
        accelerate launch train_elsewhere.py --base <the model's HF repository> [--qlora]
    adapter, report = yield from import_adapter(paths, "adapter/", base_gguf, ...)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

from engine.errors import InvalidInput
from engine.finetune.dataset import Dataset
from engine.finetune.export import AdapterRecord, read_peft_config, store_adapter
from engine.finetune.job import dense_cache, model_shape
from engine.finetune.pipeline import run_self_test
from engine.finetune.selftest import SelfTestInput
from engine.finetune.settings import TrainSettings
from engine.finetune.weights_files import require_safetensors
from engine.jobs import CancelToken, Progress
from engine.library.hashing import sha256_file
from engine.paths import EmberPaths

SCRIPT = "train_elsewhere.py"
DEFAULT_PROBES = ("Hello! Who are you and what can you do?", "Explain in two sentences what a bridge is for.")


def export_job_folder(dataset: Dataset, settings: TrainSettings, out: Path, base_gguf: Path) -> Path:
    """A self-contained folder: the dataset JSONL, config.json, the training script and how to run it."""
    settings = settings.checked()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InvalidInput(f"{out} is not empty.", "Give a new or empty folder.")
    out.mkdir(parents=True, exist_ok=True)
    dataset.write(out)
    shape = model_shape(base_gguf)
    (out / "config.json").write_text(json.dumps({
        "settings": settings.to_dict(), "mode": dataset.mode, "dataset_hash": dataset.content_hash(),
        "base_gguf": {"file": Path(base_gguf).name, "architecture": shape.architecture,
                      "parameters": shape.parameters}}, indent=1), encoding="utf-8")
    script = resources.files("resources") / "finetune" / SCRIPT
    (out / SCRIPT).write_text(script.read_text(encoding="utf-8"), encoding="utf-8")
    (out / "README.txt").write_text(
        f"Train on another machine, then bring the adapter back to Ember.\n\n"
        f"  pip install torch transformers peft accelerate      (and bitsandbytes for --qlora on NVIDIA)\n"
        f"  accelerate launch {SCRIPT} --base <the Hugging Face repository of {Path(base_gguf).name}> [--qlora]\n"
        f"  ember finetune import adapter --model {Path(base_gguf).name}\n"
        f"  (or in Ember: Fine-tune, Import adapter…, with that model chosen as the base model)\n", encoding="utf-8")
    return out


def import_adapter(paths: EmberPaths, peft_folder: Path | str, base_gguf: Path | str, *, name: str | None = None,
                   probes: Sequence[str] = (), threads: int = 1, cancel: CancelToken | None = None,
                   ) -> Iterator[Progress]:
    """Export a peft folder to a GGUF adapter and self-test it; returns (AdapterRecord, SelfTestReport)."""
    peft_folder, base_gguf = Path(peft_folder), Path(base_gguf)
    config = read_peft_config(peft_folder)  # refuses what llama.cpp cannot carry, before any work
    require_safetensors(peft_folder)  # and weights only in a pickle (never loaded)
    sha = yield from sha256_file(base_gguf, cancel)
    record = {"base_model": {"path": str(base_gguf.resolve()), "sha256": sha,
                             "architecture": model_shape(base_gguf).architecture},
              "imported_from": str(peft_folder.resolve()), "settings": {"rank": config.get("r"),
                                                                          "alpha": config.get("lora_alpha")}}
    adapter = store_adapter(paths, name or peft_folder.resolve().name, peft_folder, base_gguf, record)
    probes = list(probes) or list(DEFAULT_PROBES)
    given = SelfTestInput(base_gguf, dense_cache(paths, sha), probes,
                          conversations=[[{"role": "user", "content": p}] for p in probes], threads=threads,
                          log_dir=paths.logs)
    report = yield from run_self_test(adapter, given, cancel)
    return adapter, report


def copy_adapter(adapter: AdapterRecord, out: Path) -> Path:
    """The adapter's folder (GGUF, peft, record) copied to `out` (the CLI's --out)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / adapter.name
    shutil.copytree(adapter.folder, target, dirs_exist_ok=True)
    return target
