"""System prompt presets: Ember's defaults (resources/presets/*.json) plus the user's own (in ember.db)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from importlib import resources

from engine.errors import InvalidInput
from engine.store.presets_repo import PresetRepository

MAX_NAME = 80


@dataclass(frozen=True)
class Preset:
    name: str
    system_prompt: str
    builtin: bool


def builtin_presets() -> list[Preset]:
    """The presets shipped in resources/presets/*.json (a list of {"name", "system_prompt"})."""
    presets = []
    folder = resources.files("resources") / "presets"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            for entry in json.loads(item.read_text(encoding="utf-8")):
                presets.append(Preset(entry["name"], entry["system_prompt"], True))
    return presets


def list_presets(conn: sqlite3.Connection) -> list[Preset]:
    """Ember's presets first, then the user's, by name."""
    return builtin_presets() + [Preset(r.name, r.system_prompt, False) for r in PresetRepository(conn).all()]


def save_preset(conn: sqlite3.Connection, name: str, system_prompt: str) -> Preset:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("A preset needs a name.", "Type a name for the preset.")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"A preset name has at most {MAX_NAME} characters.", "Choose a shorter name.")
    if any(p.name.lower() == name.lower() for p in builtin_presets()):
        raise InvalidInput(f"“{name}” is one of Ember's own presets.", "Choose another name.")
    PresetRepository(conn).save(name, system_prompt)
    return Preset(name, system_prompt, False)


def delete_preset(conn: sqlite3.Connection, name: str) -> None:
    if any(p.name == name for p in builtin_presets()):
        raise InvalidInput(f"“{name}” is one of Ember's own presets and cannot be deleted.")
    PresetRepository(conn).delete(name)
