"""A hostile or broken Hub: nothing is written outside the models folder, no half or wrong file becomes a model.

The stand-in Hub (tests/support/hub_server.py) is a real HTTP server on 127.0.0.1 with switches for
faults. Each case ends in one of two ways: the download recovers and the file is verified (resumed,
restarted, retried), or it stops with a typed error that says what to do, and the library has no
file by that name.
"""

from __future__ import annotations

import filecmp
import re
from importlib import metadata
from pathlib import Path

import pytest

from engine.errors import ChecksumMismatch, DownloadFailed, HubError, NotFound, UnsafePath
from engine.hub.files import list_gguf_files
from engine.hub.sidecar import PartRecord, part_path, sidecar_path
from engine.library.library import Library
from engine.store.db import connect
from tests.support.hub_fixtures import (
    EVIL_PATHS,
    EVIL_REPO,
    GATED_REPO,
    SMOL_FILE,
    SMOL_REPO,
    fetch,
)

pytestmark = pytest.mark.timeout(60)


def library_names(paths) -> list[tuple[str, str]]:
    conn = connect(paths.db)
    try:
        return [(e.source, e.name) for e in Library(paths, conn).scan()]
    finally:
        conn.close()


def assert_nothing_kept(paths, file=SMOL_FILE, repo=SMOL_REPO) -> None:
    """No file by that name, no part, nothing from the Hub by that name in the library."""
    dest = paths.models / repo / file
    assert not dest.exists() and not part_path(dest).exists()
    assert ("hub", file) not in library_names(paths)


# -- file names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("evil", EVIL_PATHS)
def test_unsafe_paths_never_write_outside_the_models_folder(hub_server, paths, tmp_path, evil):
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(UnsafePath, match="Refused the path"):
        fetch(hub_server, paths, repo=EVIL_REPO, file=evil)
    with pytest.raises(UnsafePath):
        fetch(hub_server, paths, repo="../evil", file="fine.Q4_0.gguf")
    assert {p for p in tmp_path.rglob("*")} == before
    assert not any("resolve" in path for _, path in hub_server.stats.requests)


def test_a_repository_listing_unsafe_paths_shows_only_its_safe_files(hub_server):
    assert [f.name for f in list_gguf_files(EVIL_REPO, endpoint=hub_server.url)] == ["fine.Q4_0.gguf"]


# -- the connection --------------------------------------------------------------------------------

def test_dropped_connections_are_resumed_not_restarted(hub_server, paths, smollm2_path):
    hub_server.faults.drop_after, hub_server.faults.drop_times = 3_000_000, 2
    dest, events = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    assert hub_server.stats.range_starts == [0, 3_000_000, 6_000_000]
    assert sum(1 for e in events if e.message.startswith("Interrupted")) == 2


def test_a_connection_reset_is_resumed(hub_server, paths, smollm2_path):
    hub_server.faults.drop_after, hub_server.faults.reset = 4_000_000, True
    dest, events = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    first, resumed_at = hub_server.stats.range_starts  # a reset discards what was still in flight
    assert first == 0 and 0 < resumed_at <= 4_000_000
    assert any("Interrupted: the connection" in e.message for e in events), [e.message for e in events]


def test_a_stall_is_detected_and_retried(hub_server, paths, smollm2_path):
    hub_server.faults.stall_after, hub_server.faults.stall_s = 5_000_000, 30
    dest, events = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    assert hub_server.stats.range_starts == [0, 5_000_000]
    assert any("no data for 1 s (the connection stalled)" in e.message for e in events)


def test_a_server_that_ignores_range_is_downloaded_again_from_the_start(hub_server, paths, smollm2_path):
    hub_server.faults.drop_after, hub_server.faults.ignore_range = 3_000_000, True
    dest, events = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)  # not the first 3 MB twice
    assert hub_server.stats.range_starts == [0, 3_000_000]
    assert any("did not resume: downloading from the start" in e.message for e in events)


@pytest.mark.parametrize("delta", [-100_000, +100_000])
def test_a_wrong_content_length_never_makes_a_wrong_file(hub_server, paths, smollm2_path, delta):
    hub_server.faults.length_delta = delta
    dest, _ = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)


def test_bytes_past_the_end_of_the_file_are_refused_and_deleted(hub_server, paths):
    hub_server.faults.extra_bytes = 1000
    with pytest.raises(ChecksumMismatch, match="failed verification: its size is"):
        fetch(hub_server, paths)
    assert_nothing_kept(paths)


def test_the_right_size_with_flipped_bytes_is_refused_and_never_becomes_a_model(hub_server, paths):
    hub_server.faults.wrong_bytes = True
    with pytest.raises(ChecksumMismatch, match="failed verification: its SHA-256 is") as caught:
        fetch(hub_server, paths)
    assert "deleted" in caught.value.message and "not in your library" in caught.value.message
    assert caught.value.hint.startswith("The file was removed. Download it again")
    record = PartRecord.load(sidecar_path(paths.models / SMOL_REPO / SMOL_FILE))
    assert record.state == "failed" and "failed verification" in record.error
    assert_nothing_kept(paths)


# -- what the Hub answers --------------------------------------------------------------------------

def test_missing_file_and_repo_say_so(hub_server, paths):
    with pytest.raises(NotFound, match="has no file 'nope.gguf'"):
        fetch(hub_server, paths, file="nope.gguf")
    with pytest.raises(NotFound, match="No model named nobody/nothing on the Hub"):
        fetch(hub_server, paths, repo="nobody/nothing", file="x.gguf")
    assert hub_server.stats.bytes_served == 0


def test_a_gated_repository_401_says_to_accept_the_terms_and_log_in(hub_server, paths):
    with pytest.raises(HubError, match="is gated") as caught:
        fetch(hub_server, paths, repo=GATED_REPO, file="secret.Q4_0.gguf")
    assert "log in" in caught.value.hint
    assert hub_server.stats.bytes_served == 0


def test_a_plain_401_says_the_model_needs_a_login(hub_server, paths):
    hub_server.faults.status = 401
    with pytest.raises(HubError, match=f"refused access to {SMOL_REPO}/{SMOL_FILE} \\(HTTP 401\\)") as caught:
        fetch(hub_server, paths)
    assert "log in" in caught.value.hint
    assert_nothing_kept(paths)


def test_a_404_from_the_file_server_says_the_file_is_missing(hub_server, paths):
    hub_server.faults.status = 404
    with pytest.raises(NotFound, match=f"has no file '{SMOL_FILE}'"):
        fetch(hub_server, paths)
    assert_nothing_kept(paths)


def test_429_is_retried_then_said_with_what_to_do(hub_server, paths, smollm2_path):
    hub_server.faults.status, hub_server.faults.status_times = 429, 2
    dest, events = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    assert sum("HTTP 429" in e.message for e in events) == 2
    hub_server.reset()
    hub_server.faults.status = 429
    with pytest.raises(DownloadFailed, match="HTTP 429, 3 times in a row") as caught:
        fetch(hub_server, paths, file="SmolLM2-135M-Instruct-Q8_0.gguf")
    assert "too many requests" in caught.value.hint.lower()
    assert_nothing_kept(paths, file="SmolLM2-135M-Instruct-Q8_0.gguf")


def test_server_errors_are_retried_then_reported(hub_server, paths, smollm2_path):
    hub_server.faults.status, hub_server.faults.status_times = 500, 2
    dest, events = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    assert sum("HTTP 500" in e.message for e in events) == 2
    hub_server.reset()
    hub_server.faults.status = 503
    with pytest.raises(DownloadFailed, match="the Hub answered HTTP 503, 3 times in a row"):
        fetch(hub_server, paths, file="SmolLM2-135M-Instruct-Q8_0.gguf")


# -- the libraries that parse what comes from outside ----------------------------------------------

KNOWN_FIXES = {"jinja2": (3, 1, 6),  # sandbox escapes through str.format and |attr (CVE-2024-56201/56326, 2025-27516)
               "huggingface-hub": (1, 26)}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_minimum_versions_with_known_fixes_are_pinned_and_installed():
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    block = text.split("\ndependencies = [", 1)[1].split("\n]", 1)[0]  # (tomllib is not in Python 3.10)
    listed = re.findall(r'^\s*"([^"]+)"', block, re.M)
    requirements = {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].lower(): r for r in listed}
    for name, fixed in KNOWN_FIXES.items():
        floor = re.search(r">=\s*([\d.]+)", requirements[name])
        assert floor and _version(floor[1]) >= fixed, f"{name} must be pinned >= {fixed}: {requirements[name]}"
        assert _version(metadata.version(name)) >= fixed
    assert "lxml" not in requirements or _version(re.search(r">=\s*([\d.]+)", requirements["lxml"])[1]) >= (6, 1)
