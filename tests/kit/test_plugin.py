"""The plugin as a tester gets it: loaded from its `pytest11` entry point, light to load, and able to live
beside a conftest that names it too (Ember's own suite does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "app.testing.pytest_plugin"

A_TESTERS_TEST = '''
import os

def test_home(ember_home):
    assert os.environ["EMBER_HOME"] == str(ember_home) and not any(ember_home.iterdir())

def test_light(request):
    import sys
    assert request.config.pluginmanager.has_plugin("{plugin}")
    assert not [m for m in ("PySide6", "app.views.main_window", "engine.paths") if m in sys.modules]
'''


def test_the_entry_point_names_the_plugin_module():
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is not in Python 3.10)
    section = pyproject.split("[project.entry-points.pytest11]\n", 1)[1].split("\n[", 1)[0]
    assert f'"{PLUGIN}" = "{PLUGIN}"' in section.splitlines()
    assert (ROOT / "app" / "testing" / "pytest_plugin.py").is_file()


def run_pytest(folder: Path, site: Path) -> subprocess.CompletedProcess:
    """pytest in `folder` with `site` on the path; without pytest-qt, which imports Qt itself when loaded."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:pytest-qt",
                           str(folder)], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_testers_project_gets_the_fixtures_from_the_entry_point_alone_or_with_a_conftest(tmp_path):
    site = tmp_path / "site"  # an installed distribution that declares the entry point, as pip writes it
    info = site / "ember_kit_probe-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ember-kit-probe\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\n{PLUGIN} = {PLUGIN}\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_with_ember.py").write_text(A_TESTERS_TEST.replace("{plugin}", PLUGIN))
    alone = run_pytest(project, site)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    (project / "conftest.py").write_text(f"pytest_plugins = [{PLUGIN!r}]\n")  # named twice: registered once
    both = run_pytest(project, site)
    assert both.returncode == 0, both.stdout + both.stderr
    assert "2 passed" in both.stdout
