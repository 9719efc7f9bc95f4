"""The engine is pure Python: importing every engine module loads no Qt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"

BLOCK_QT_AND_IMPORT_ALL = """
import importlib, pkgutil, sys
class BlockQt:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6', 'app'):
            raise ImportError('engine imported ' + name)
sys.meta_path.insert(0, BlockQt())
import engine
skip = {'engine.runtime.host_main', 'engine.runtime.routes', 'engine.runtime.templates',
        'engine.runtime.generation', 'engine.runtime.adapters'}  # child-process modules: checked without importing llama.cpp below
for info in pkgutil.walk_packages(engine.__path__, 'engine.'):
    if info.name not in skip and not info.name.startswith('engine.finetune.trainer'):  # torch: the trainer child
        importlib.import_module(info.name)
print('ok', len(sys.modules))
"""


def test_every_engine_module_imports_without_qt():
    result = subprocess.run([sys.executable, "-c", BLOCK_QT_AND_IMPORT_ALL], capture_output=True, text=True,
                            cwd=ENGINE.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_no_engine_source_mentions_a_qt_import():
    offenders = [
        str(path) for path in ENGINE.rglob("*.py")
        if any(line.lstrip().startswith(("import PySide6", "from PySide6", "import shiboken6", "from shiboken6"))
               for line in path.read_text().splitlines())
    ]
    assert offenders == []
