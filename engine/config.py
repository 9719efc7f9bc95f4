"""App-wide settings in EMBER_HOME/settings.json: a schema version plus a dict for the rest.

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

SCHEMA_VERSION = 1
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
        return {"schema_version": self.schema_version, **self.values}


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
    version = data.pop("schema_version", SCHEMA_VERSION)
    return Settings(int(version) if isinstance(version, int) else SCHEMA_VERSION, data)


def save_settings(path: Path, settings: Settings) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
