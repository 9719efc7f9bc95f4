"""The command line of an Ember child process (model host, template renderer, document reader, trainer),
from source or the bundle.

From source a child is `python -m engine.runtime.host_main ...`. In the bundle built by PyInstaller
(packaging/) there is no `python`: `sys.executable` is the `ember` program itself, which would open
another window if given `-m`. So there a child is `ember --child engine.runtime.host_main ...`, and
`ember` hands such a call to `run_child` before anything else (app/__main__.py). Only the modules
named in CHILD_MODULES can be run that way.

The bundle's launcher also points LD_LIBRARY_PATH at the bundle's libraries. Ember's own children get
it again from the launcher, but any other program Ember starts (nvidia-smi, the browser that opens a
link) would load the bundle's libraries instead of its own: `forget_bundle_library_path` gives them
the user's original value.
"""

from __future__ import annotations

import os
import runpy
import sys

CHILD_FLAG = "--child"
CHILD_MODULES = (
    "engine.runtime.host_main",  # llama.cpp for one model (engine/runtime/supervisor.py)
    "engine.rag.parse_child",  # the document reader (engine/rag/parser.py)
    "engine.finetune.train_child",  # the trainer (engine/finetune/job.py, selftest.py)
    "engine.runtime.template_child",  # a chat host's template renderer (engine/runtime/template_process.py)
)


def running_from_bundle() -> bool:
    """True in the PyInstaller bundle (it sets sys.frozen), False when run from source."""
    return bool(getattr(sys, "frozen", False))


def forget_bundle_library_path() -> None:
    """In the bundle, put back the LD_LIBRARY_PATH the user had (this process's loader read it already)."""
    if not running_from_bundle():
        return
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)


def child_command(module: str, *args: str) -> list[str]:
    """argv that runs `module` as a child process: `python -m module args` or `ember --child module args`."""
    if module not in CHILD_MODULES:
        raise ValueError(f"{module!r} is not one of Ember's child processes: {', '.join(CHILD_MODULES)}")
    if running_from_bundle():
        return [sys.executable, CHILD_FLAG, module, *map(str, args)]
    return [sys.executable, "-m", module, *map(str, args)]


def run_child(argv: list[str]) -> int:
    """Run `argv` = [module, *args] as `python -m` would (the module's `__main__` block, its own sys.argv)."""
    if not argv or argv[0] not in CHILD_MODULES:
        name = argv[0] if argv else "nothing"
        sys.stderr.write(f"ember: {CHILD_FLAG} takes one of {', '.join(CHILD_MODULES)}, not {name}\n")
        return 2
    module, *args = argv
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)  # the module ends with sys.exit(main())
    return 0
