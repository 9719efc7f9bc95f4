"""The desktop entry and the AppStream metadata: what a desktop needs of them, read here always, and
their own validators where installed (Debian's desktop-file-utils and appstream; ./scripts/test
installs them when it runs as root, as in CI)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET
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


def test_the_desktop_entry_starts_the_window():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(LINUX / "ember.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application" and section["Name"] == "Ember"
    assert section["Exec"] == "ember"  # arguments would reach the command-line interface, not the window
    assert section["Icon"] == "ember" and section["Terminal"] == "false"
    assert (Path(__file__).resolve().parents[2] / "resources" / "icons" / "ember.svg").is_file()


def test_the_appstream_metadata_names_the_desktop_entry():
    (metainfo,) = LINUX.glob("*.metainfo.xml")
    root = ET.parse(metainfo).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == metainfo.name.removesuffix(".metainfo.xml")
    assert root.find("launchable").text == "ember.desktop"
    for required in ("name", "summary", "description", "metadata_license", "project_license"):
        assert root.find(required) is not None, required
