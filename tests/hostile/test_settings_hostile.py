"""Hostile settings files: Ember starts with any settings.json, keeps the user's file aside before it
writes over it, and says what it did. The basics (a wrong type reads as its default, a newer
version's file is copied at the first save, a damaged file is set aside) are in
tests/engine/test_preferences.py; these add what the user is told, the keys read outside the typed
preferences, and files that are not even a JSON object."""

from __future__ import annotations

import json
import os

import pytest

from engine.config import SCHEMA_VERSION, check_settings, load_settings, update_settings
from engine.library.library import model_folders
from engine.paths import EmberPaths
from engine.preferences import DEFAULTS, check_preferences, load_preferences, save_preferences
from engine.remote.endpoints import Endpoint, load_endpoints, save_endpoint
from engine.runtime.bandwidth import memory_bandwidth
from engine.runtime.fit import record_measured_speed, speed_calibration

pytestmark = pytest.mark.timeout(60)


def write(paths: EmberPaths, data) -> bytes:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    paths.settings.write_bytes(raw)
    return raw


def kept_aside(paths: EmberPaths) -> list[str]:
    return sorted(p.name for p in paths.home.glob("settings.json.*"))


@pytest.mark.parametrize("raw, words", [
    (b'{"schema_version": 2, "preferences": {"app": {"theme": "da', "Unterminated string"),  # cut short
    (b"\xff\xfe garbage \x00", "codec can't decode"),  # not UTF-8, not JSON
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # the JSON parser's recursion
    (b'["a", "list"]', "a JSON array, not an object"),  # JSON, but not Ember's object
    (b"null", "a JSON null, not an object"),
], ids=["cut short", "not UTF-8", "nested 100,000 deep", "a list", "null"])
def test_a_file_that_is_not_a_settings_object_is_kept_aside_and_ember_says_so(paths, raw, words):
    write(paths, raw)
    notes = check_preferences(paths)
    assert len(notes) == 1 and words in notes[0]
    assert "it is kept as settings.json.bad and Ember starts with its default settings" in notes[0]
    assert (paths.home / "settings.json.bad").read_bytes() == raw  # the user's bytes, untouched
    assert not paths.settings.exists() and load_preferences(paths) == DEFAULTS
    save_preferences(paths, theme="dark")  # and saving works again
    assert load_preferences(paths).theme == "dark"


def test_a_settings_file_of_a_gigabyte_is_kept_aside_without_being_read(paths):
    with open(paths.settings, "wb") as file:
        file.truncate(1024**3)  # sparse: reading it would put 2 GB in the app's memory at start
    notes = check_preferences(paths)
    assert "(it is 1,024 MB; a settings file is a few KB); it is kept as settings.json.bad" in notes[0]
    assert (paths.home / "settings.json.bad").stat().st_size == 1024**3 and load_preferences(paths) == DEFAULTS


def test_a_folder_named_settings_json_is_moved_aside_whole(paths):
    paths.settings.mkdir()
    (paths.settings / "inside.txt").write_text("someone's notes")
    notes = check_preferences(paths)
    assert "Ember could not read its settings file (it is not a regular file)" in notes[0]
    assert (paths.home / "settings.json.bad" / "inside.txt").read_text() == "someone's notes"
    save_preferences(paths, theme="light")
    assert load_preferences(paths).theme == "light"


@pytest.mark.parametrize("kind", ["named pipe", "link to /dev/zero"])
def test_a_pipe_or_a_device_as_settings_json_is_moved_aside_unread(paths, kind):
    """Reading either would never end: a pipe waits for a writer, /dev/zero fills the memory."""
    if kind == "named pipe":
        os.mkfifo(paths.settings)
    else:
        paths.settings.symlink_to("/dev/zero")
    notes = check_preferences(paths)
    assert "(it is not a regular file); it is kept as settings.json.bad" in notes[0]
    assert load_preferences(paths) == DEFAULTS


def test_a_second_bad_file_never_replaces_the_first_one_kept(paths):
    first = write(paths, b"{ first damaged file")
    assert check_settings(paths.settings)
    second = write(paths, b"{ second damaged file")
    notes = check_settings(paths.settings)
    assert "kept as settings.json.bad-2" in notes[0]
    assert (paths.home / "settings.json.bad").read_bytes() == first
    assert (paths.home / "settings.json.bad-2").read_bytes() == second


WRONG = {"context_length": "lots", "gpu_layers": 12, "threads": -3, "flash_attention": "yes", "theme": "purple",
         "font_size": True, "system_prompt": ["a", "list"], "embedding_model": "/models/notes.txt"}


def test_wrong_types_and_values_become_defaults_the_file_is_copied_aside_and_each_is_named(paths):
    original = write(paths, {"schema_version": 2, "preferences": {"app": {**WRONG, "theme": "dark"}}})
    notes = check_preferences(paths)
    assert len(notes) == 1
    for name in set(WRONG) - {"theme"}:  # each bad value named, the good one not
        assert name in notes[0], name
    assert "context_length should be a whole number, not 'lots'" in notes[0]
    assert "font_size should be a whole number, not True" in notes[0]
    assert "keeps your file as settings.json.bad" in notes[0]
    assert (paths.home / "settings.json.bad").read_bytes() == original
    prefs = load_preferences(paths)
    assert prefs == DEFAULTS.__class__(**{**DEFAULTS.__dict__, "theme": "dark"})  # the good value is kept
    assert check_preferences(paths) == []  # rewritten once: the next start has nothing to say
    assert kept_aside(paths) == ["settings.json.bad"]


def test_the_preferences_section_of_another_type_is_replaced_by_the_defaults(paths):
    write(paths, {"schema_version": 2, "preferences": {"app": "dark please"}})
    notes = check_preferences(paths)
    assert "the preferences should be an object, not 'dark please'" in notes[0]
    assert load_preferences(paths) == DEFAULTS


@pytest.mark.parametrize("value", [7, "text", [1, 2], {"x": {"y": 1}}, None, True, 1e308],
                         ids=["number", "text", "list", "object", "null", "true", "1e308"])
def test_every_key_read_outside_the_preferences_takes_its_default_when_hand_edited(paths, value):
    """model_folders, remote_endpoints, memory_bandwidth, speed_calibration and the server section
    are read by the library, the remote servers, the fit estimate and the Server panel."""
    write(paths, {"schema_version": 2,
                  "preferences": {"model_folders": value, "remote_endpoints": value, "server": value,
                                  "welcome_done": value},
                  "machine": {"memory_bandwidth": value, "speed_calibration": {"cpu": value}}})
    assert all(isinstance(folder, type(paths.home)) for folder in model_folders(paths))
    assert load_endpoints(paths) == []
    assert memory_bandwidth(paths, measure=lambda: 2e10) == 2e10  # measured again, not read as garbage
    assert speed_calibration(paths, "cpu") == 1.0
    assert record_measured_speed(paths, 10.0, 20.0, "cpu") == 0.5
    save_endpoint(paths, Endpoint("lab", "http://127.0.0.1:9/v1"))
    assert [e.name for e in load_endpoints(paths)] == ["lab"]
    write(paths, {"schema_version": 2, "machine": {"speed_calibration": value}})
    assert speed_calibration(paths, "cpu") == 1.0 and record_measured_speed(paths, 10.0, 20.0, "cpu") == 0.5


def test_unknown_keys_are_kept_through_a_save_and_need_no_word(paths):
    write(paths, {"schema_version": 2, "galaxy": {"stars": 3},
                  "preferences": {"app": {"theme": "light", "hologram": True}, "future_panel": [1]}})
    assert check_preferences(paths) == []
    assert load_preferences(paths).theme == "light"
    save_preferences(paths, font_size=12)
    data = json.loads(paths.settings.read_text())
    assert data["preferences"]["app"]["hologram"] is True  # a newer Ember's choice survives this one's save
    assert data["preferences"]["future_panel"] == [1]
    assert data["preferences"]["galaxy"] == {"stars": 3}  # a version 2 file's stray top-level key: kept too


def test_a_newer_versions_file_is_copied_aside_at_start_and_ember_says_so(paths):
    newer = {"schema_version": SCHEMA_VERSION + 5, "preferences": {"app": {"theme": "dark"}, "warp": 9}}
    raw = write(paths, newer)
    notes = check_preferences(paths)
    assert notes == [f"Ember's settings were written by a newer Ember (settings version {SCHEMA_VERSION + 5}); a "
                     f"copy is kept as settings.json.v{SCHEMA_VERSION + 5}, and what this Ember does not know is "
                     "left out when it saves."]
    assert (paths.home / f"settings.json.v{SCHEMA_VERSION + 5}").read_bytes() == raw  # before any write
    assert load_preferences(paths).theme == "dark"
    update_settings(paths.settings, lambda s: s.set("welcome_done", True))
    assert load_settings(paths.settings).schema_version == SCHEMA_VERSION


def test_the_window_opens_with_a_hostile_settings_file_and_says_what_it_did(paths, qtbot):
    from tests.support.started import started_window

    write(paths, {"schema_version": 2, "preferences": {"app": {"context_length": "lots", "theme": 5},
                                                       "server": "on", "model_folders": 3, "welcome_done": True}})
    with started_window(paths, qtbot) as window:
        assert window.recovery_bar.isVisible()
        text = window.recovery_bar.message.text()
        assert "context_length should be a whole number" in text and "theme should be text, not 5" in text
        assert "settings.json.bad" in text
