"""The desktop entry and the AppStream metadata pass their own validators (skipped where those are not
installed: Debian's desktop-file-utils and appstream packages give them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LINUX = Path(__file__).resolve().parents[2] / "packaging" / "linux"


def test_the_desktop_entry_is_valid():
    if not shutil.which("desktop-file-validate"):
        pytest.skip("desktop-file-validate is not installed (Debian: desktop-file-utils)")
    result = subprocess.run(["desktop-file-validate", str(LINUX / "ember.desktop")], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout  # not even a hint


def test_the_appstream_metadata_is_valid():
    if not shutil.which("appstreamcli"):
        pytest.skip("appstreamcli is not installed (Debian: appstream)")
    (metainfo,) = LINUX.glob("*.metainfo.xml")
    result = subprocess.run(["appstreamcli", "validate", "--no-net", str(metainfo)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert f"<id>{metainfo.name.removesuffix('.metainfo.xml')}</id>" in metainfo.read_text()
