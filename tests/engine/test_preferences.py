"""Settings: the typed preferences round trip, bad values are refused with what to give, a damaged
or hand-edited file still lets Ember start, version 1 files are upgraded to sections, a newer
version's file is kept, and a crash while saving leaves the old file whole."""

from __future__ import annotations

import json
import os

import pytest

from engine.config import SCHEMA_VERSION, load_settings, save_settings, update_settings
from engine.errors import InvalidInput, SettingsNotSaved
from engine.preferences import DEFAULTS, load_preferences, save_preferences


def test_round_trip_and_sections(paths):
    saved = save_preferences(paths, context_length=8192, gpu_layers="12", threads=1, flash_attention=False,
                             theme="dark", font_size=13, system_prompt="Be brief.")
    assert load_preferences(paths) == saved
    assert saved.gpu_layers_value == 12 and saved.threads_value == 1
    update_settings(paths.settings, lambda s: s.set("memory_bandwidth", {"bytes_per_s": 1e10}))
    data = json.loads(paths.settings.read_text())
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert data["preferences"]["app"]["context_length"] == 8192  # what the user chose ...
    assert data["machine"] == {"memory_bandwidth": {"bytes_per_s": 1e10}}  # ... apart from what was measured


@pytest.mark.parametrize("change, words", [
    ({"context_length": 100}, "256 to 262144"),
    ({"gpu_layers": "many"}, "auto"),
    ({"threads": 10_000}, "cores"),
    ({"theme": "purple"}, "system, light or dark"),
    ({"font_size": 3}, "6 to 40"),
    ({"embedding_model": "/models/notes.txt"}, ".gguf"),
    ({"context_length": "4096"}, "takes int"),
    ({"flash_attention": 1}, "takes bool"),
    ({"colour": "red"}, "Unknown setting"),
])
def test_a_bad_value_is_refused_and_nothing_is_written(paths, change, words):
    save_preferences(paths, context_length=2048)
    before = paths.settings.read_bytes()
    with pytest.raises(InvalidInput) as refused:
        save_preferences(paths, **change)
    assert words in refused.value.message + (refused.value.hint or "")
    assert paths.settings.read_bytes() == before


def test_a_hand_edited_file_with_wrong_types_still_loads(paths):
    paths.settings.write_text(json.dumps({"schema_version": 2, "preferences": {"app": {
        "context_length": "lots", "theme": "dark", "threads": -3, "font_size": True, "mystery": 1}}}))
    prefs = load_preferences(paths)
    assert prefs.theme == "dark"  # the good value is kept
    assert (prefs.context_length, prefs.threads, prefs.font_size) == (DEFAULTS.context_length, 0, 0)


def test_a_version_1_file_is_read_and_written_as_sections(paths):
    paths.settings.write_text(json.dumps({"schema_version": 1, "model_folders": ["/m"],
                                          "speed_calibration": {"cpu": {"factor": 0.8}}}))
    assert load_settings(paths.settings).get("model_folders") == ["/m"]
    save_preferences(paths, theme="light")
    data = json.loads(paths.settings.read_text())
    assert data["preferences"]["model_folders"] == ["/m"]
    assert data["machine"]["speed_calibration"] == {"cpu": {"factor": 0.8}}


def test_a_newer_versions_file_is_kept_aside_before_it_is_written(paths):
    newer = {"schema_version": 7, "preferences": {"app": {"theme": "dark"}, "galaxy": True}}
    paths.settings.write_text(json.dumps(newer))
    assert load_preferences(paths).theme == "dark"
    save_preferences(paths, font_size=12)
    assert json.loads((paths.home / "settings.json.v7").read_text()) == newer
    assert json.loads(paths.settings.read_text())["schema_version"] == SCHEMA_VERSION


def test_a_crash_while_saving_leaves_the_old_file(paths, monkeypatch):
    save_preferences(paths, context_length=2048)
    before = paths.settings.read_bytes()

    def crash(*_args):
        raise OSError("the machine went down")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(SettingsNotSaved, match="Could not save Ember's settings: the machine went down"):
        save_settings(paths.settings, load_settings(paths.settings))
    monkeypatch.undo()
    assert paths.settings.read_bytes() == before
    assert [p.name for p in paths.home.iterdir() if p.name.startswith("settings.json.")] == []  # no leftovers


def test_a_damaged_file_is_set_aside_and_defaults_are_used(paths):
    paths.settings.write_bytes(b"\x00\xff not json")
    assert load_preferences(paths) == DEFAULTS
    assert (paths.home / "settings.json.bad").exists()
