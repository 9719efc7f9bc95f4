"""Downloads from the stand-in Hub: verify, resume, retry, refuse; the file only appears when verified."""

from __future__ import annotations

import filecmp
import threading

import pytest

from engine.errors import NetworkError, NotEnoughDisk
from engine.gguf.inspect import inspect_gguf
from engine.hub.download import DownloadOptions, download
from engine.hub.sidecar import PartRecord, part_path, sidecar_path
from engine.jobs import CancelToken
from engine.library.library import Library
from engine.store.db import connect
from tests.support.hub_fixtures import FAST, SMOL_FILE, SMOL_REPO, closed_port_url, drain, fetch
from tests.support.hub_server import HubFile

pytestmark = pytest.mark.timeout(60)


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
