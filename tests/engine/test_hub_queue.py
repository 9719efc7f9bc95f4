"""The download queue, read from the sidecars: enqueue, run several at once, pause, resume, remove, restart."""

from __future__ import annotations

import threading

import pytest

from engine.errors import InvalidInput, NotEnoughDisk, UnsafePath
from engine.hub.download import DownloadOptions
from engine.hub.files import list_gguf_files
from engine.hub.queue import DownloadQueue
from engine.hub.sidecar import PartRecord, part_path, sidecar_path
from engine.paths import EmberPaths
from tests.support.hub_fixtures import (
    EVIL_REPO,
    SMOL_FILE,
    SMOL_REPO,
    SPLIT_PARTS,
    SPLIT_REPO,
    drain,
    split_part_bytes,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def queue(hub_server, ember_home) -> DownloadQueue:
    return DownloadQueue(EmberPaths(ember_home).ensure(), hub_server.url,
                         options=DownloadOptions(stall_timeout_s=1, backoff_s=0.05))


def test_enqueue_lists_queued_downloads(queue):
    item = queue.enqueue(SMOL_REPO, SMOL_FILE, sha256="ab" * 32, size=123)
    assert item.state == "queued" and item.done == 0 and item.size == 123 and not item.running
    assert [i.key for i in queue.items()] == [item.key]
    assert queue.to_resume() == [item]
    with pytest.raises(UnsafePath):
        queue.enqueue(EVIL_REPO, "../../evil.gguf")


def test_several_downloads_at_once_each_on_its_own_thread(queue, hub_server):
    [split_model] = list_gguf_files(SPLIT_REPO, endpoint=hub_server.url)
    items = [queue.enqueue(SPLIT_REPO, p.path, sha256=p.sha256, size=p.size) for p in split_model.parts]
    assert [i.path for i in items] == SPLIT_PARTS and all(i.sha256 and i.size for i in items)
    hub_server.faults.rate = 2_000_000  # slow enough that they overlap
    results, errors = {}, []

    def work(key):
        try:
            results[key], _ = drain(queue.run(key))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i.key,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for index, item in enumerate(items, 1):
        assert results[item.key].read_bytes() == split_part_bytes(index)
    assert {i.state for i in queue.items()} == {"done"}


def test_pause_a_running_download_then_resume_it(queue, hub_server, smollm2_path):
    hub_server.faults.rate = 20_000_000
    item = queue.enqueue(SMOL_REPO, SMOL_FILE)
    job = queue.run(item.key)
    for progress in job:
        if progress.done > 2_000_000:
            assert queue.is_running(item.key) and queue.get(item.key).running
            queue.pause(item.key)
    paused = queue.get(item.key)
    assert paused.state == "paused" and 0 < paused.done < smollm2_path.stat().st_size
    assert not queue.is_running(item.key) and queue.to_resume() == []
    resumed = queue.resume(item.key)
    assert resumed.state == "queued" and resumed.done == paused.done and queue.to_resume() == [resumed]
    hub_server.faults.rate = None
    dest, _ = drain(queue.run(item.key))
    assert dest.read_bytes() == smollm2_path.read_bytes()
    assert hub_server.stats.range_starts[-1] == paused.done


def test_a_download_cut_off_by_a_crash_is_resumed_after_restart(queue, ember_home):
    item = queue.enqueue(SMOL_REPO, SMOL_FILE)
    record = PartRecord.load(sidecar_path(item.dest))
    record.save(sidecar_path(item.dest), state="downloading")  # what a killed process leaves
    part_path(item.dest).write_bytes(b"x" * 1000)
    after_restart = DownloadQueue(EmberPaths(ember_home), queue.endpoint)
    [again] = after_restart.to_resume()
    assert again.key == item.key and again.state == "downloading" and again.done == 1000


def test_remove_deletes_the_part_and_the_sidecar(queue, hub_server):
    hub_server.faults.rate = 20_000_000
    item = queue.enqueue(SMOL_REPO, SMOL_FILE)
    for progress in queue.run(item.key):
        if progress.done > 1_000_000:
            queue.remove(item.key)  # while running: deleted when its worker stops
    assert not part_path(item.dest).exists() and not sidecar_path(item.dest).exists()
    waiting = queue.enqueue(SPLIT_REPO, SPLIT_PARTS[0])
    queue.remove(waiting.key)
    assert queue.items() == []


def test_a_pause_before_the_worker_starts_is_kept_then_resume_runs_it(queue, hub_server, smollm2_path):
    item = queue.enqueue(SMOL_REPO, SMOL_FILE)
    job = queue.run(item.key)  # handed to a worker that has not started it yet
    queue.pause(item.key)
    assert drain(job) == (None, [])  # the worker starts: it sees the pause and downloads nothing
    assert queue.get(item.key).state == "paused" and hub_server.stats.requests == []
    assert not part_path(item.dest).exists() and not queue.is_running(item.key)
    queue.resume(item.key)
    dest, _ = drain(queue.run(item.key))
    assert dest.read_bytes() == smollm2_path.read_bytes()


def test_a_remove_before_the_worker_starts_downloads_nothing(queue, hub_server):
    item = queue.enqueue(SMOL_REPO, SMOL_FILE)
    job = queue.run(item.key)
    queue.remove(item.key)
    assert drain(job) == (None, [])
    assert hub_server.stats.requests == [] and queue.items() == [] and list(item.dest.parent.iterdir()) == []


def test_a_download_cannot_run_twice_and_closing_its_job_pauses_it(queue):
    item = queue.enqueue(SMOL_REPO, SMOL_FILE)
    first = queue.run(item.key)
    next(first)
    with pytest.raises(InvalidInput, match="already downloading"):
        next(queue.run(item.key))
    first.close()  # the consumer stops: the download is paused, the part kept
    assert queue.get(item.key).state == "paused" and not queue.is_running(item.key)


def test_running_downloads_count_against_the_free_space_of_others(hub_server, ember_home, smollm2_path):
    size = smollm2_path.stat().st_size
    queue = DownloadQueue(EmberPaths(ember_home).ensure(), hub_server.url,
                          disk_free=lambda path: 2**30 + size + 50_000)  # room for one, not both
    hub_server.faults.stall_after, hub_server.faults.stall_s = 10, 30  # the first holds at 10 bytes
    first = queue.enqueue(SMOL_REPO, SMOL_FILE, size=size)
    second = queue.enqueue(SPLIT_REPO, SPLIT_PARTS[0])
    job = queue.run(first.key)
    next(job)
    with pytest.raises(NotEnoughDisk):
        drain(queue.run(second.key))
    job.close()
    assert drain(queue.run(second.key))[0].is_file()  # alone, it fits
