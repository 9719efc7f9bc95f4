"""The local library: scan, sources, split models, .part files, lazy SHA-256, delete with sidecars, folders."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from engine.hub.download import download
from engine.hub.sidecar import part_path, sidecar_path
from engine.library.library import model_folders
from tests.support.hub_fixtures import SPLIT_PARTS, SPLIT_REPO, drain

pytestmark = pytest.mark.timeout(60)


def by_name(entries):
    return {e.name: e for e in entries}


def test_starter_model_and_sources(library, smollm2_path, tmp_path):
    folder = tmp_path / "my-models"
    folder.mkdir()
    shutil.copy(smollm2_path, folder / "copy.gguf")
    (folder / "notes.txt").write_text("not a model")
    library.add_folder(folder)
    assert model_folders(library.paths) == [folder.resolve()]
    entries = library.scan()
    assert [e.source for e in entries] == ["starter", "folder"]
    assert entries[0].path == str(smollm2_path) and entries[0].info.quantization == "Q4_1"
    added = library.add_file(smollm2_path)  # already the starter: it stays one entry
    assert added.path == str(smollm2_path.resolve())


def test_part_files_and_incomplete_splits_are_not_models(library, smollm2_path):
    folder = library.paths.models / "acme" / "x"
    folder.mkdir(parents=True)
    shutil.copy(smollm2_path, folder / "half.gguf.part")
    (folder / "half.gguf.part.json").write_text("{}")
    (folder / "m-00001-of-00002.gguf").write_bytes(b"GGUF")
    assert [e.source for e in library.scan()] == ["starter"]
    (folder / "m-00002-of-00002.gguf").write_bytes(b"GGUF")
    entries = by_name(library.scan())
    assert set(entries) == {smollm2_path.name, "m-00001-of-00002.gguf"}  # one entry for the split model
    assert entries["m-00001-of-00002.gguf"].error  # not a real GGUF: listed with the reason


def test_a_downloaded_split_model_is_one_entry_and_delete_removes_every_part(library, hub_server):
    for name in SPLIT_PARTS:
        drain(download(SPLIT_REPO, name, paths=library.paths, endpoint=hub_server.url))
    entries = [e for e in library.scan() if e.source == "hub"]
    assert [e.name for e in entries] == [SPLIT_PARTS[0]] and entries[0].repo_id == SPLIT_REPO
    folder = library.paths.models / SPLIT_REPO
    assert len(list(folder.iterdir())) == 6  # three parts, three sidecars
    library.remove(entries[0], delete_file=True)
    assert list(folder.iterdir()) == []
    assert [e.source for e in library.scan()] == ["starter"]


def test_sha256_is_computed_lazily_once_and_cached(library, smollm2_path, tmp_path):
    copy = tmp_path / "mine.gguf"
    shutil.copy(smollm2_path, copy)
    entry = library.add_file(copy)
    assert entry.sha256 is None
    digest, events = drain(library.compute_sha256(entry))
    assert digest == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert events and events[-1].done == events[-1].total == copy.stat().st_size
    again = by_name(library.scan())["mine.gguf"]
    assert again.sha256 == digest and again.source == "added"
    _, events = drain(library.compute_sha256(again))
    assert events == []  # cached


def test_user_files_are_not_deleted_only_forgotten(library, smollm2_path, tmp_path):
    copy = tmp_path / "mine.gguf"
    shutil.copy(smollm2_path, copy)
    entry = library.add_file(copy)
    with pytest.raises(Exception, match="only deletes files it downloaded"):
        library.remove(entry, delete_file=True)
    library.remove(entry, delete_file=False)
    assert copy.exists() and "mine.gguf" not in by_name(library.scan())


def test_delete_a_downloaded_model_with_its_sidecar(library, hub_server):
    dest, _ = drain(download(SPLIT_REPO, SPLIT_PARTS[0], paths=library.paths, endpoint=hub_server.url))
    renamed = dest.with_name("single.gguf")  # a single-file model of this repo
    dest.rename(renamed)
    sidecar_path(dest).rename(sidecar_path(renamed))
    part_path(renamed).write_bytes(b"left over")
    entry = by_name(library.scan())["single.gguf"]
    library.remove(entry, delete_file=True)
    assert not renamed.exists() and not sidecar_path(renamed).exists() and not part_path(renamed).exists()
