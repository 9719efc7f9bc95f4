"""PyTorch never enters the app process: every engine module but the trainer child's imports without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCK_TORCH_AND_IMPORT_ALL = """
import importlib, pkgutil, sys
class BlockTraining:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers', 'peft', 'accelerate', 'bitsandbytes'):
            raise ImportError('imported ' + name)
sys.meta_path.insert(0, BlockTraining())
import engine
child_only = ('engine.finetune.trainer', 'engine.runtime.host_main', 'engine.runtime.routes',
              'engine.runtime.adapters', 'engine.runtime.generation', 'engine.runtime.templates')
count = 0
for info in pkgutil.walk_packages(engine.__path__, 'engine.'):
    if not info.name.startswith(child_only):
        importlib.import_module(info.name)
        count += 1
import engine.cli
engine.cli.build_parser()  # every command registered, `ember finetune` included
print('ok', count)
"""


def test_the_app_side_of_fine_tuning_never_imports_torch():
    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH_AND_IMPORT_ALL], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_only_the_trainer_package_imports_torch_at_the_top():
    offenders = []
    for path in (ROOT / "engine").rglob("*.py"):
        if "trainer" in path.relative_to(ROOT / "engine").parts:
            continue
        for line in path.read_text().splitlines():
            if line.startswith(("import torch", "from torch", "import transformers", "from transformers",
                                "from peft", "import peft")):
                offenders.append(str(path))
    assert offenders == []
