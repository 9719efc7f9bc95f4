"""System prompt presets: Ember's defaults (resources/presets/*.json) plus the user's own (in ember.db)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from importlib import resources

from engine.errors import InvalidInput


@dataclass(frozen=True)
class Preset:
    name: str
    system_prompt: str
    builtin: bool


def builtin_presets() -> list[Preset]:
    presets = []
    folder = resources.files("resources") / "presets"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            for entry in json.loads(item.read_text(encoding="utf-8")):
                presets.append(Preset(entry["name"], entry["system_prompt"], True))
    return presets


def list_presets(conn: sqlite3.Connection) -> list[Preset]:
    user = [Preset(r["name"], r["system_prompt"], False)
            for r in conn.execute("SELECT name, system_prompt FROM presets ORDER BY name")]
    return builtin_presets() + user


def save_preset(conn: sqlite3.Connection, name: str, system_prompt: str) -> Preset:
    name = name.strip()
    if not name:
        raise InvalidInput("A preset needs a name.")
    if any(p.name == name for p in builtin_presets()):
        raise InvalidInput(f"“{name}” is one of Ember's presets.", "Choose another name.")
    conn.execute("INSERT INTO presets (name, system_prompt, created_at) VALUES (?, ?, ?) "
                 "ON CONFLICT(name) DO UPDATE SET system_prompt = excluded.system_prompt",
                 (name, system_prompt, time.time()))
    return Preset(name, system_prompt, False)


def delete_preset(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("DELETE FROM presets WHERE name = ?", (name,))
