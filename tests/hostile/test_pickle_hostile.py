"""No pickle is ever loaded: the source says so, and an adapter whose weights are only a pickle is refused unread.

A PyTorch `.bin` / `.pt` file is a Python pickle: loading it runs whatever its author put in it. Ember
reads weights from safetensors and GGUF only; its own training checkpoints are read with
`torch.load(weights_only=True)`. The scan below walks the syntax of engine/ and app/ and fails on any
other way to unpickle, so a new one cannot slip in unnoticed.
"""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import pytest

from engine.finetune.elsewhere import import_adapter
from engine.finetune.errors import ExportFailed
from engine.finetune.export import write_gguf_adapter
from engine.paths import EmberPaths
from tests.support.hub_fixtures import drain

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("engine", "app")
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _spreads_load_kwargs(call: ast.Call) -> bool:
    """`**load_kwargs(...)`: the trainer's from_pretrained arguments, which always hold use_safetensors=True."""
    return any(k.arg is None and isinstance(k.value, ast.Call) and getattr(k.value.func, "id", "") == "load_kwargs"
               for k in call.keywords)


def unpickling_calls(source: str, filename: str = "<source>") -> list[str]:
    """Every way this source could unpickle something: 'file:line what'."""
    tree = ast.parse(source, filename)
    found = []
    functions_checking = {id(node) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.Module))
                          and any(isinstance(n, ast.Call) and getattr(n.func, "id", "") == "require_safetensors"
                                  for n in ast.walk(node))}
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def checked_by_caller(node) -> bool:
        while id(node) in parents:
            node = parents[id(node)]
            if isinstance(node, ast.FunctionDef):
                return id(node) in functions_checking
        return False

    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            found.append(f"{where} from {node.module} import")
        elif isinstance(node, ast.Attribute) and node.attr in ("read_pickle", "Unpickler"):
            found.append(f"{where} .{node.attr}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            if name == "load" and owner == "torch" and not _is_true(_keyword(node, "weights_only")):
                found.append(f"{where} torch.load without weights_only=True")
            if _is_true(_keyword(node, "allow_pickle")):
                found.append(f"{where} allow_pickle=True")
            if name == "from_pretrained" and owner.startswith("AutoModel") and not (
                    _keyword(node, "gguf_file") is not None or _is_true(_keyword(node, "use_safetensors"))
                    or _spreads_load_kwargs(node)):
                found.append(f"{where} {owner}.from_pretrained without use_safetensors=True")
            if name == "from_pretrained" and owner == "PeftModel" and not checked_by_caller(node):
                found.append(f"{where} PeftModel.from_pretrained without require_safetensors first")
    return found


def test_the_scan_finds_each_way_to_unpickle():
    bad = ("import pickle\nfrom joblib import load\nimport torch\ntorch.load('a.pt')\n"
           "torch.load('b.pt', weights_only=False)\nimport numpy as np\nnp.load('c.npy', allow_pickle=True)\n"
           "AutoModelForCausalLM.from_pretrained('x')\ndef f():\n    PeftModel.from_pretrained(m, 'y')\n")
    assert len(unpickling_calls(bad)) == 7, unpickling_calls(bad)
    good = ("torch.load('a.pt', weights_only=True)\nAutoModelForCausalLM.from_pretrained('x', use_safetensors=True)\n"
            "AutoModelForCausalLM.from_pretrained('x', gguf_file='m.gguf')\n"
            "def f(folder):\n    require_safetensors(folder)\n    PeftModel.from_pretrained(m, folder)\n")
    assert unpickling_calls(good) == []


def test_no_pickle_is_ever_loaded_by_engine_or_app():
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += unpickling_calls(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, "ways to load a pickle:\n" + "\n".join(found)


class _RunsCode:
    """Unpickling this creates the marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def pickled_adapter_folder(tmp_path: Path, file_name: str) -> tuple[Path, Path]:
    """A peft folder whose weights are only a pickle that, if loaded, leaves a marker file."""
    folder = tmp_path / f"adapter-{file_name.replace('.', '-')}"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8,
                                                            "target_modules": ["q_proj"]}))
    marker = tmp_path / "pickle-was-loaded"
    (folder / file_name).write_bytes(pickle.dumps(_RunsCode(marker)))
    return folder, marker


@pytest.mark.parametrize("file_name", ["adapter_model.bin", "adapter.pt", "model.pth", "checkpoint.ckpt"])
def test_importing_an_adapter_saved_as_a_pickle_is_refused_unread(ember_home, smollm2_path, tmp_path, file_name):
    folder, marker = pickled_adapter_folder(tmp_path, file_name)
    paths = EmberPaths(ember_home).ensure()
    with pytest.raises(ExportFailed, match=f"holds {file_name}, a PyTorch pickle file") as caught:
        drain(import_adapter(paths, folder, smollm2_path))
    assert "safetensors" in caught.value.hint
    with pytest.raises(ExportFailed, match="a PyTorch pickle file"):
        write_gguf_adapter(folder, smollm2_path, tmp_path / "out.gguf")
    assert not marker.exists(), "the pickle was loaded"
    assert not (tmp_path / "out.gguf").exists()
    assert list(paths.adapters.iterdir()) == [], "a refused adapter was stored"
