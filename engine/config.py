"""App-wide settings in EMBER_HOME/settings.json: a schema version, the user's choices and this
machine's measurements, in two sections:

    {"schema_version": 2, "preferences": {"context_length": 4096, "server": {...}, ...},
     "machine": {"memory_bandwidth": {...}, "speed_calibration": {...}}}

In memory it is one dict by key (`get`/`set`); `MACHINE_KEYS` decides the section a key is written to,
so the measurements can be reset without touching what the user chose. Version 1 files (one flat
dict) are read as they are and written as version 2. A file from a newer Ember is copied aside
(settings.json.v<N>) before it is first written over. The typed view of the preferences is
engine/preferences.py.

Written atomically (temporary file + os.replace), so a crash mid-write leaves the old file whole.
A file that cannot be read is set aside as settings.json.bad and Ember starts from defaults.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
MACHINE_KEYS = frozenset({"memory_bandwidth", "speed_calibration"})  # measured here, not chosen
SECTIONS = ("preferences", "machine")
_write_lock = threading.Lock()  # read-modify-write of one file by several threads of one process


@dataclass
class Settings:
    schema_version: int = SCHEMA_VERSION
    values: dict = field(default_factory=dict)

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    def set(self, key: str, value) -> None:
        self.values[key] = value

    def to_json(self) -> dict:
        preferences = {k: v for k, v in self.values.items() if k not in MACHINE_KEYS}
        machine = {k: v for k, v in self.values.items() if k in MACHINE_KEYS}
        return {"schema_version": SCHEMA_VERSION, "preferences": preferences, "machine": machine}


def load_settings(path: Path) -> Settings:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as exc:
        log.warning("Could not read %s (%s); starting from defaults", path, exc)
        try:
            os.replace(path, path.with_name(path.name + ".bad"))
        except OSError:
            pass
        return Settings()
    if not isinstance(data, dict):
        return Settings()
    version = data.pop("schema_version", 1)
    version = version if isinstance(version, int) else 1
    if version >= 2:  # sections; a newer version's unknown sections are not kept (its file is copied aside)
        values = {}
        for section in SECTIONS:
            if isinstance(data.get(section), dict):
                values.update(data[section])
        return Settings(version, values)
    return Settings(version, data)  # version 1: one flat dict


def save_settings(path: Path, settings: Settings) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if settings.schema_version > SCHEMA_VERSION:  # a newer Ember wrote it: keep its file before writing ours
        kept = path.with_name(f"{path.name}.v{settings.schema_version}")
        if path.exists() and not kept.exists():
            kept.write_bytes(path.read_bytes())
        settings.schema_version = SCHEMA_VERSION
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(settings.to_json(), f, indent=2, sort_keys=True, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_settings(path: Path, change: Callable[[Settings], None]) -> Settings:
    """Load, apply `change`, save; serialised within this process."""
    with _write_lock:
        settings = load_settings(path)
        change(settings)
        save_settings(path, settings)
        return settings
