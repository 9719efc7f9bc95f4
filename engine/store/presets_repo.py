"""All SQL for the user's own system prompt presets (table `presets`)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field

from engine.store.db import database_errors


@dataclass(frozen=True)
class PresetRow:
    name: str
    system_prompt: str
    sampling: dict = field(default_factory=dict)


class PresetRepository:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def all(self) -> list[PresetRow]:
        rows = self.conn.execute("SELECT name, system_prompt, sampling_json FROM presets ORDER BY name COLLATE NOCASE")
        return [PresetRow(r["name"], r["system_prompt"], json.loads(r["sampling_json"] or "{}")) for r in rows]

    @database_errors("save the preset")
    def save(self, name: str, system_prompt: str, sampling: dict | None = None) -> None:
        """Add a preset, or replace the one with this name."""
        self.conn.execute(
            "INSERT INTO presets (name, system_prompt, sampling_json, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET system_prompt = excluded.system_prompt, "
            "sampling_json = excluded.sampling_json",
            (name, system_prompt, json.dumps(sampling or {}), time.time()),
        )

    @database_errors("delete the preset")
    def delete(self, name: str) -> None:
        self.conn.execute("DELETE FROM presets WHERE name = ?", (name,))
