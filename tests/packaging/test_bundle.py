"""The Linux bundle: built with packaging/build_linux.sh, unpacked elsewhere, it passes its own self-test.

Marked `bundle` (about a minute or two to build): CI runs it with the rest; locally `-m "not bundle"` skips it.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine import __version__

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.bundle


@pytest.fixture(scope="module")
def tarball() -> Path:
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (pip install -e '.[dev]' installs it)")
    if not sys.platform.startswith("linux"):
        pytest.skip("packaging/build_linux.sh builds the Linux bundle only")
    result = subprocess.run(["bash", str(ROOT / "packaging" / "build_linux.sh")], cwd=ROOT,
                            env=dict(os.environ, PYTHON=sys.executable), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    path = ROOT / "dist" / f"ember-{__version__}-linux-{platform.machine()}.tar.gz"
    assert path.is_file(), result.stdout[-3000:]
    assert "the five largest parts:" in result.stdout
    return path


@pytest.fixture(scope="module")
def unpacked(tarball, tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(tarball) as archive:
        archive.extractall(where, filter="tar")
    return where / "ember"


@pytest.mark.timeout(1200)
def test_the_unpacked_bundle_passes_its_self_test(unpacked, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    result = subprocess.run([str(unpacked / "ember"), "--self-test"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    assert f"starter model {unpacked / '_internal'}" in out  # the bundle's own copy, not the build machine's
    assert f"the model host runs as: {unpacked / 'ember'} --child engine.runtime.host_main" in out
    assert "ok    a reply arrived" in out
    assert "ok    programs Ember starts get the user's LD_LIBRARY_PATH" in out
    assert "ok    the document reader child read a PDF" in out
    assert "cannot fine-tune" in out  # no PyTorch in the bundle, and the user is told how to get it
    assert "ok    the Fine-tune page says what is missing, without an Install button" in out
    assert out.rstrip().endswith("ember self-test: passed")


@pytest.mark.timeout(1200)
def test_the_bundle_has_its_desktop_entry_metadata_and_icon(unpacked):
    share = unpacked / "share"
    entry = share / "applications" / "ember.desktop"
    assert "Exec=ember" in entry.read_text() and "Icon=ember" in entry.read_text()
    (metainfo,) = (share / "metainfo").glob("*.metainfo.xml")
    assert "<launchable type=\"desktop-id\">ember.desktop</launchable>" in metainfo.read_text()
    icon = (share / "icons" / "hicolor" / "scalable" / "apps" / "ember.svg").read_text()
    assert icon.startswith("<svg") and "currentColor" not in icon  # a desktop shows it in its own colour


@pytest.mark.timeout(1200)
def test_install_desktop_entry_puts_ember_in_the_menu_with_its_full_path(unpacked, tmp_path):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path))
    result = subprocess.run([str(unpacked / "install-desktop-entry.sh")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    entry = tmp_path / "applications" / "ember.desktop"
    assert f'Exec="{unpacked / "ember"}"\n' in entry.read_text()
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "ember.svg").is_file()
    if shutil.which("desktop-file-validate"):
        checked = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout
    removed = subprocess.run([str(unpacked / "install-desktop-entry.sh"), "--remove"], env=env, capture_output=True,
                             text=True)
    assert removed.returncode == 0 and not entry.exists()
