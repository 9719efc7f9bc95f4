"""The user's choices for the whole app, typed and checked: the Settings page edits them and the
parts of Ember that use them read them from here (never a bare key of settings.json).

    prefs = load_preferences(paths)                 # a value that is missing or damaged reads as its default
    save_preferences(paths, context_length=8192)    # checked first: InvalidInput says what is wrong

Reading is forgiving (a hand-edited file with a wrong type must not stop Ember from starting: that
value falls back to its default and the log says so); writing is strict. Keys this Ember does not
know (a newer Ember's) are kept when it saves. `check_preferences` runs once at start: a file with
values Ember cannot use is copied aside, rewritten with the defaults in their place, and the user is
told which.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields, replace

from engine.config import check_settings, keep_copy, load_settings, update_settings
from engine.errors import InvalidInput, SettingsNotSaved
from engine.paths import EmberPaths

log = logging.getLogger(__name__)

THEMES = ("system", "light", "dark")
SECTION_KEY = "app"  # the typed choices live together under preferences.app in settings.json


@dataclass(frozen=True)
class Preferences:
    context_length: int = 4096  # a new chat's context, in tokens
    gpu_layers: str = "auto"  # "auto" or a number of layers, as text ("0": the CPU only)
    threads: int = 0  # CPU threads for generation; 0: cores - 1
    flash_attention: bool = True  # on a GPU (faster, less memory); never on the CPU, where it is slower
    theme: str = "system"  # system / light / dark
    font_size: int = 0  # points; 0: the system's size
    system_prompt: str = ""  # a new chat's system prompt
    embedding_model: str = ""  # a GGUF for new collections; "": the recommended model

    def checked(self) -> Preferences:
        """Self, or InvalidInput naming the first value that cannot work and what to give instead."""
        if not 256 <= self.context_length <= 262144:
            raise InvalidInput(f"A context of {self.context_length} tokens is out of range.",
                               "Give 256 to 262144 tokens (4096 suits most models).")
        if self.gpu_layers != "auto" and not (self.gpu_layers.isdigit() and int(self.gpu_layers) <= 1000):
            raise InvalidInput(f"GPU layers {self.gpu_layers!r} is neither 'auto' nor a number of layers.",
                               "Use auto, or 0 (CPU only) up to the model's layer count.")
        cores = os.cpu_count() or 1
        if not 0 <= self.threads <= max(cores * 2, 1):
            raise InvalidInput(f"{self.threads} threads is out of range for this machine ({cores} cores).",
                               f"Use 0 (automatic) or 1 to {cores}.")
        if self.theme not in THEMES:
            raise InvalidInput(f"Unknown theme {self.theme!r}.", "Use system, light or dark.")
        if self.font_size != 0 and not 6 <= self.font_size <= 40:
            raise InvalidInput(f"A font of {self.font_size} points is out of range.",
                               "Use 6 to 40 points, or 0 for the system's size.")
        if self.embedding_model and not self.embedding_model.lower().endswith(".gguf"):
            raise InvalidInput(f"{self.embedding_model} is not a GGUF file.", "Pick a .gguf embedding model.")
        return self

    @property
    def gpu_layers_value(self) -> int | str:
        """What HostSettings takes: "auto" or an int."""
        return "auto" if self.gpu_layers == "auto" else int(self.gpu_layers)

    @property
    def threads_value(self) -> int | None:
        return self.threads or None


DEFAULTS = Preferences()


def from_dict(values: dict, problems: list[str] | None = None) -> Preferences:
    """Typed preferences from a stored dict: unknown keys are ignored, and a value of the wrong type
    or out of range reads as its default (logged, and said in `problems` when given), so Ember always starts."""
    chosen = DEFAULTS
    problems = [] if problems is None else problems
    for item in fields(Preferences):
        if item.name not in values:
            continue
        value = values[item.name]
        expected = type(getattr(DEFAULTS, item.name))
        if expected is int and isinstance(value, bool) or not isinstance(value, expected):
            problems.append(f"{item.name} should be {_kind_words[expected]}, not {_shown(value)}")
            log.warning("settings.json: %s should be %s, not %r; using %r", item.name, expected.__name__, value,
                        getattr(DEFAULTS, item.name))
            continue
        try:
            chosen = replace(chosen, **{item.name: value}).checked()
        except InvalidInput as error:
            problems.append(f"{item.name}: {error.message}")
            log.warning("settings.json: %s; using the default", error.message)
    unknown = set(values) - {item.name for item in fields(Preferences)}
    if unknown:
        log.info("settings.json: ignoring unknown preferences %s", ", ".join(sorted(unknown)))
    return chosen


_kind_words = {int: "a whole number", bool: "true or false", str: "text"}


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _unknown_keys(stored) -> dict:
    """What the stored section holds that this Ember does not know (a newer Ember's): kept on save."""
    if not isinstance(stored, dict):
        return {}
    known = {item.name for item in fields(Preferences)}
    return {key: value for key, value in stored.items() if key not in known}


def check_preferences(paths: EmberPaths) -> list[str]:
    """At start: the settings file checked (check_settings), then the user's choices; a file with
    values Ember cannot use is copied aside and rewritten with the defaults in their place. What was
    done, in sentences for the window (empty when all is well)."""
    notes = check_settings(paths.settings)
    stored = load_settings(paths.settings).get(SECTION_KEY)
    if stored is None:
        return notes
    problems: list[str] = []
    if isinstance(stored, dict):
        chosen = from_dict(stored, problems)
    else:
        chosen = DEFAULTS
        problems.append(f"the preferences should be an object, not {_shown(stored)}")
    if problems:
        try:
            copy = keep_copy(paths.settings)
            update_settings(paths.settings, lambda s: s.set(SECTION_KEY, {**_unknown_keys(stored), **asdict(chosen)}))
        except (OSError, SettingsNotSaved) as exc:  # a full or read-only disk: say it, start all the same
            notes.append(f"Ember could not use some of its settings ({'; '.join(problems)}); it uses its defaults "
                         f"for them this time, and left your file as it is ({getattr(exc, 'message', None) or exc}).")
            return notes
        notes.append(f"Ember could not use some of its settings ({'; '.join(problems)}); it uses its defaults for "
                     f"them and keeps your file as {copy.name}.")
    return notes


def load_preferences(paths: EmberPaths) -> Preferences:
    stored = load_settings(paths.settings).get(SECTION_KEY)
    return from_dict(stored if isinstance(stored, dict) else {})


def save_preferences(paths: EmberPaths, **changes) -> Preferences:
    """Apply and save changes (checked as a whole; nothing is written when one is refused)."""
    unknown = set(changes) - {item.name for item in fields(Preferences)}
    if unknown:
        raise InvalidInput(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
    for name, value in changes.items():
        expected = type(getattr(DEFAULTS, name))
        if expected is int and isinstance(value, bool) or not isinstance(value, expected):
            raise InvalidInput(f"The setting {name} takes {expected.__name__}, not {value!r}.")
    result: list[Preferences] = []

    def change(settings) -> None:
        stored = settings.get(SECTION_KEY, {}, kind=dict)
        current = from_dict(stored)
        updated = replace(current, **changes).checked()
        settings.set(SECTION_KEY, {**_unknown_keys(stored), **asdict(updated)})
        result.append(updated)

    update_settings(paths.settings, change)
    return result[0]
