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
A file that cannot be used (not JSON, cut short, not an object, nested past reason) is set aside as
settings.json.bad (then .bad-2, ...: an earlier one is never written over) and Ember starts from
defaults. `Settings.get(key, default, kind=dict)` gives the default for a hand-edited value of the
wrong type, so no reader trips on one. `check_settings` runs once at start and says in words what
was set aside or copied, for the window to show.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import SettingsNotSaved

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
MACHINE_KEYS = frozenset({"memory_bandwidth", "speed_calibration"})  # measured here, not chosen
SECTIONS = ("preferences", "machine")
MAX_FILE_BYTES = 16 * 1024**2  # far above any real settings file (they are a few KB)
_write_lock = threading.Lock()  # read-modify-write of one file by several threads of one process


@dataclass
class Settings:
    schema_version: int = SCHEMA_VERSION
    values: dict = field(default_factory=dict)

    def get(self, key: str, default=None, kind: type | tuple[type, ...] | None = None):
        """The stored value; `default` when it is missing or, with `kind`, not of that type (logged)."""
        value = self.values.get(key, default)
        if kind is not None and value is not default and not isinstance(value, kind):
            log.warning("settings.json: %s should be %s, not %r; using %r", key, _names(kind), value, default)
            return default
        return value

    def set(self, key: str, value) -> None:
        self.values[key] = value

    def to_json(self) -> dict:
        preferences = {k: v for k, v in self.values.items() if k not in MACHINE_KEYS}
        machine = {k: v for k, v in self.values.items() if k in MACHINE_KEYS}
        return {"schema_version": SCHEMA_VERSION, "preferences": preferences, "machine": machine}


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "true or false",
               type(None): "null"}


@dataclass(frozen=True)
class _Read:
    data: dict | None  # the file's object; None when missing or unusable
    problem: str = ""  # why it cannot be used ("" when it can, or is missing)


def _read(path: Path) -> _Read:
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a folder, a pipe (reading it would wait for ever), /dev/zero
            return _Read(None, "it is not a regular file")
        size = status.st_size
        if size > MAX_FILE_BYTES:  # not read into memory at start: a settings file is a few KB
            return _Read(None, f"it is {size / 1024**2:,.0f} MB; a settings file is a few KB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _Read(None)
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON, cut short
        return _Read(None, str(exc))
    except RecursionError:  # "[[[[..." thousands deep
        return _Read(None, "it is nested too deeply")
    if not isinstance(data, dict):
        return _Read(None, f"it holds a JSON {_JSON_KINDS.get(type(data), 'value')}, not an object")
    return _Read(data)


def _free_name(path: Path, suffix: str) -> Path:
    """settings.json<suffix>, or with -2, -3 ... when that is taken: what was kept stays kept."""
    candidate, number = path.with_name(path.name + suffix), 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}{suffix}-{number}")
    return candidate


def _set_aside(path: Path, problem: str) -> Path | None:
    """Move an unusable file out of the way (before anything writes over it); where it went."""
    log.warning("Could not use %s (%s); it is kept aside and Ember starts from defaults", path, problem)
    aside = _free_name(path, ".bad")
    try:
        os.replace(path, aside)
    except OSError:
        return None
    return aside


def load_settings(path: Path) -> Settings:
    path = Path(path)
    read = _read(path)
    if read.problem:
        _set_aside(path, read.problem)
    if read.data is None:
        return Settings()
    data = read.data
    version = data.pop("schema_version", 1)
    version = version if isinstance(version, int) and not isinstance(version, bool) else 1
    if version >= 2:  # sections; a newer version's unknown sections are not kept (its file is copied aside)
        values = {key: value for key, value in data.items() if key not in SECTIONS}  # a hand-added key: kept
        for section in SECTIONS:
            if isinstance(data.get(section), dict):
                values.update(data[section])
        return Settings(version, values)
    return Settings(version, data)  # version 1: one flat dict


def save_settings(path: Path, settings: Settings) -> None:
    """Write the file whole or not at all; SettingsNotSaved (the old file intact) when the disk says no."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if settings.schema_version > SCHEMA_VERSION:  # a newer Ember wrote it: keep its file before writing ours
            kept = path.with_name(f"{path.name}.v{settings.schema_version}")
            if path.exists() and not kept.exists():
                write_whole(kept, path.read_bytes())
            settings.schema_version = SCHEMA_VERSION
        text = json.dumps(settings.to_json(), indent=2, sort_keys=True, ensure_ascii=False)
        write_whole(path, text.encode("utf-8"))
    except OSError as exc:  # a full disk, a read-only folder
        raise SettingsNotSaved(f"Could not save Ember's settings: {exc.strerror or exc}.") from exc


def write_whole(path: Path, data: bytes) -> None:
    """Write a temporary file beside `path`, then rename it: a crash or a full disk never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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


def keep_copy(path: Path) -> Path:
    """A copy of the file as it is now, under a free settings.json.bad name (before Ember rewrites it)."""
    copy = _free_name(path, ".bad")
    write_whole(copy, path.read_bytes())
    return copy


def check_settings(path: Path) -> list[str]:
    """At start: set aside a file that cannot be used, copy a newer Ember's file before this one
    writes over it; what was done, in sentences for the user (empty when the file is fine or missing)."""
    path = Path(path)
    read = _read(path)
    if read.problem:
        aside = _set_aside(path, read.problem)
        kept = f"it is kept as {aside.name}" if aside else "it could not be moved aside"
        return [f"Ember could not read its settings file ({read.problem}); {kept} and Ember starts with its "
                "default settings."]
    version = (read.data or {}).get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        copy = path.with_name(f"{path.name}.v{version}")
        if not copy.exists():
            try:
                write_whole(copy, path.read_bytes())
            except OSError as exc:
                return [f"Ember's settings were written by a newer Ember (settings version {version}) and could "
                        f"not be copied aside ({exc.strerror or exc}); Ember reads them, and will not save its "
                        "own over them until a copy is kept."]
        return [f"Ember's settings were written by a newer Ember (settings version {version}); a copy is kept as "
                f"{copy.name}, and what this Ember does not know is left out when it saves."]
    return []
