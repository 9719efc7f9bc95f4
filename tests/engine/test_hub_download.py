"""Downloads from the stand-in Hub: verify, resume, retry, refuse; the file only appears when verified."""

from __future__ import annotations

import filecmp
import threading

import pytest

from engine.errors import ChecksumMismatch, DownloadFailed, NetworkError, NotEnoughDisk, NotFound, UnsafePath
from engine.gguf.inspect import inspect_gguf
from engine.hub.download import DownloadOptions, download
from engine.hub.sidecar import PartRecord, part_path, sidecar_path
from engine.jobs import CancelToken
from engine.library.library import Library
from engine.paths import EmberPaths
from engine.store.db import connect
from tests.support.hub_fixtures import EVIL_REPO, GATED_REPO, SMOL_FILE, SMOL_REPO, closed_port_url, drain
from tests.support.hub_server import HubFile

pytestmark = pytest.mark.timeout(60)
FAST = DownloadOptions(stall_timeout_s=1.0, backoff_s=0.05, attempts=3)


@pytest.fixture
def paths(ember_home) -> EmberPaths:
    return EmberPaths(ember_home).ensure()


def fetch(hub, paths, repo=SMOL_REPO, file=SMOL_FILE, **kwargs):
    kwargs.setdefault("options", FAST)
    return drain(download(repo, file, paths=paths, endpoint=hub.url, **kwargs))


def test_download_verifies_and_the_model_enters_the_library(hub_server, paths, smollm2_path):
    dest, events = fetch(hub_server, paths)
    assert dest == paths.models / SMOL_REPO / SMOL_FILE
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    assert not part_path(dest).exists()
    assert events[-1].message.endswith("SHA-256 verified") and events[-1].done == events[-1].total
    assert any("MB/s" in e.message for e in events)
    record = PartRecord.load(sidecar_path(dest))
    assert record.state == "done" and record.sha256 == hub_server.repos[SMOL_REPO].files[SMOL_FILE].sha256
    assert hub_server.stats.ranges == [None]  # one GET, from the start, through the 302 to the CDN
    info = inspect_gguf(dest)
    assert info.quantization == "Q4_1" and info.architecture == "llama"
    conn = connect(paths.db)
    entries = {e.path: e for e in Library(paths, conn).scan()}
    conn.close()
    entry = entries[str(dest)]
    assert entry.source == "hub" and entry.repo_id == SMOL_REPO and entry.error is None
    assert entry.sha256 == record.sha256  # taken from the verified download, not hashed again
    assert entry.info.quantization == "Q4_1"


def test_a_second_download_is_a_no_op(hub_server, paths):
    fetch(hub_server, paths)
    served = hub_server.stats.bytes_served
    dest, events = fetch(hub_server, paths)
    assert dest.is_file() and "already downloaded" in events[-1].message
    assert hub_server.stats.bytes_served == served


def test_dropped_connections_are_resumed_not_restarted(hub_server, paths, smollm2_path):
    hub_server.faults.drop_after, hub_server.faults.drop_times = 3_000_000, 2
    dest, events = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    assert hub_server.stats.range_starts == [0, 3_000_000, 6_000_000]
    assert sum(1 for e in events if e.message.startswith("Interrupted")) == 2


def test_a_stall_is_detected_and_retried(hub_server, paths, smollm2_path):
    hub_server.faults.stall_after, hub_server.faults.stall_s = 5_000_000, 30
    dest, events = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    assert hub_server.stats.range_starts == [0, 5_000_000]
    assert any("no data for 1 s (the connection stalled)" in e.message for e in events)


def test_wrong_bytes_are_rejected_and_never_become_a_model(hub_server, paths):
    hub_server.faults.wrong_bytes = True
    with pytest.raises(ChecksumMismatch, match="failed verification: its SHA-256 is") as caught:
        fetch(hub_server, paths)
    assert "deleted" in caught.value.message and "not in your library" in caught.value.message
    dest = paths.models / SMOL_REPO / SMOL_FILE
    assert not dest.exists() and not part_path(dest).exists()
    record = PartRecord.load(sidecar_path(dest))
    assert record.state == "failed" and "failed verification" in record.error
    conn = connect(paths.db)
    assert [e.source for e in Library(paths, conn).scan()] == ["starter"]
    conn.close()


def test_missing_file_and_repo_say_so(hub_server, paths):
    with pytest.raises(NotFound, match="has no file 'nope.gguf'"):
        fetch(hub_server, paths, file="nope.gguf")
    with pytest.raises(NotFound, match="No model named nobody/nothing on the Hub"):
        fetch(hub_server, paths, repo="nobody/nothing", file="x.gguf")
    with pytest.raises(Exception, match="gated"):
        fetch(hub_server, paths, repo=GATED_REPO, file="secret.Q4_0.gguf")
    assert hub_server.stats.bytes_served == 0


def test_server_errors_are_retried_then_reported(hub_server, paths, smollm2_path):
    hub_server.faults.status, hub_server.faults.status_times = 500, 2
    dest, events = fetch(hub_server, paths)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    assert sum("HTTP 500" in e.message for e in events) == 2
    hub_server.reset()
    hub_server.faults.status = 503
    with pytest.raises(DownloadFailed, match="the Hub answered HTTP 503, 3 times in a row"):
        fetch(hub_server, paths, file="SmolLM2-135M-Instruct-Q8_0.gguf")


def test_unreachable_hub_says_check_your_network(paths):
    endpoint = closed_port_url()
    with pytest.raises(NetworkError, match=f"Could not reach the Hub at {endpoint}: check your network"):
        drain(download(SMOL_REPO, SMOL_FILE, paths=paths, endpoint=endpoint, sha256="0" * 64, options=FAST))


def test_not_enough_disk_is_refused_before_any_byte(hub_server, paths):
    seen = []

    def little_space(path):
        seen.append(path)
        return 500 * 2**20  # 500 MiB: less than the file + 1 GiB

    with pytest.raises(NotEnoughDisk, match="Not enough disk space for SmolLM2-135M-Instruct.Q4_1.gguf"):
        fetch(hub_server, paths, disk_free=little_space)
    assert seen and hub_server.stats.ranges == [] and hub_server.stats.bytes_served == 0
    assert list(paths.models.rglob("*")) == []


@pytest.mark.parametrize("evil", ["../../evil.gguf", "/abs.gguf", "ok/../../../x.gguf", "~/x.gguf",
                                  "a\\..\\..\\x.gguf", "C:/x.gguf"])
def test_unsafe_paths_never_write_outside_the_models_folder(hub_server, paths, tmp_path, evil):
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(UnsafePath, match="Refused the path"):
        fetch(hub_server, paths, repo=EVIL_REPO, file=evil)
    with pytest.raises(UnsafePath):
        fetch(hub_server, paths, repo="../evil", file="fine.Q4_0.gguf")
    assert {p for p in tmp_path.rglob("*")} == before
    assert not any("resolve" in path for _, path in hub_server.stats.requests)


def test_cancel_breaks_a_stalled_read_pauses_and_resume_continues(hub_server, paths, smollm2_path):
    hub_server.faults.stall_after, hub_server.faults.stall_s = 20_000_000, 60
    dest = paths.models / SMOL_REPO / SMOL_FILE
    cancel = CancelToken()

    def cancel_once_stalled() -> None:  # another thread, while the download's read is blocked
        while not (part_path(dest).exists() and part_path(dest).stat().st_size >= 19_900_000):
            if cancel.wait(0.01):
                return
        cancel.wait(0.2)
        cancel.cancel()

    watcher = threading.Thread(target=cancel_once_stalled)
    watcher.start()
    options = DownloadOptions(stall_timeout_s=30)  # longer than the test's time limit allows to wait
    result, events = drain(download(SMOL_REPO, SMOL_FILE, paths=paths, endpoint=hub_server.url, cancel=cancel,
                                    options=options))
    watcher.join()
    assert result is None and events[-1].message == "Paused"
    assert not any(e.message.startswith("Interrupted") for e in events)  # not the stall timeout: the cancel
    assert not dest.exists() and part_path(dest).stat().st_size == 20_000_000
    assert PartRecord.load(sidecar_path(dest)).state == "paused"
    result, events = fetch(hub_server, paths)
    assert result == dest and filecmp.cmp(dest, smollm2_path, shallow=False)
    assert hub_server.stats.range_starts == [0, 20_000_000]
    assert any(e.message.startswith("Checking the") for e in events)  # the part was hashed, not fetched again


def test_a_file_changed_on_the_hub_restarts_from_zero(hub_server, paths):
    old, new = bytes(range(256)) * 8000, bytes(reversed(range(256))) * 8000
    repo = hub_server.add_repo("acme/changing-GGUF", {"m.Q4_0.gguf": old}, tags=["gguf"])
    hub_server.faults.drop_after, hub_server.faults.drop_times = 1_000_000, 1
    opts = DownloadOptions(attempts=1)
    with pytest.raises(NetworkError):
        fetch(hub_server, paths, repo="acme/changing-GGUF", file="m.Q4_0.gguf", options=opts)
    dest = paths.models / "acme/changing-GGUF/m.Q4_0.gguf"
    assert part_path(dest).stat().st_size == 1_000_000
    repo.files["m.Q4_0.gguf"] = HubFile("m.Q4_0.gguf", data=new)
    result, events = fetch(hub_server, paths, repo="acme/changing-GGUF", file="m.Q4_0.gguf")
    assert result.read_bytes() == new
    assert hub_server.stats.range_starts[-1] == 0
    assert any("changed on the Hub" in e.message for e in events)


def test_a_hash_from_an_older_file_list_is_looked_up_again(hub_server, paths):
    old, new = b"old model bytes" * 1000, b"new model bytes" * 1000
    repo = hub_server.add_repo("acme/updated-GGUF", {"m.Q4_0.gguf": old}, tags=["gguf"])
    stale = repo.files["m.Q4_0.gguf"].sha256  # what a file list fetched before the update said
    repo.files["m.Q4_0.gguf"] = HubFile("m.Q4_0.gguf", data=new)
    result, events = fetch(hub_server, paths, repo="acme/updated-GGUF", file="m.Q4_0.gguf", sha256=stale)
    assert result.read_bytes() == new and events[-1].message.endswith("SHA-256 verified")
    assert PartRecord.load(sidecar_path(result)).sha256 == repo.files["m.Q4_0.gguf"].sha256


def test_the_sidecar_names_the_file_before_the_part_gets_a_byte(hub_server, paths):
    hub_server.faults.stall_after, hub_server.faults.stall_s = 0, 30  # headers sent, then no byte
    dest = paths.models / SMOL_REPO / SMOL_FILE
    cancel, seen = CancelToken(), {}

    def look_once_the_part_exists() -> None:  # another thread, while the download waits for its first byte
        while not part_path(dest).exists():
            if cancel.wait(0.001):
                return
        seen["part_size"] = part_path(dest).stat().st_size
        seen["record"] = PartRecord.load(sidecar_path(dest))
        cancel.cancel()

    watcher = threading.Thread(target=look_once_the_part_exists)
    watcher.start()
    result, _ = drain(download(SMOL_REPO, SMOL_FILE, paths=paths, endpoint=hub_server.url, cancel=cancel,
                               options=DownloadOptions(stall_timeout_s=30)))
    watcher.join()
    file = hub_server.repos[SMOL_REPO].files[SMOL_FILE]
    assert result is None and seen["part_size"] == 0
    record = seen["record"]
    assert record is not None and record.state == "downloading"
    assert (record.etag, record.size, record.sha256) == (file.sha256, file.size, file.sha256)
