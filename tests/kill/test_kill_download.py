"""`ember download` killed at random points of a model's transfer (and once at its very end, while it is
verified and renamed), then started again: the half file is never in the library, the database the
listing writes stays whole, each restart resumes where the part on disk ends, and the last run ends with
the byte-identical, verified model in the library."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import time

import pytest

from engine.hub.sidecar import PartRecord, part_path, sidecar_path
from tests.kill.killing import integrity, kill_points, sigkill, start, wait_for
from tests.support.hub_fixtures import SMOL_FILE, SMOL_REPO

pytestmark = pytest.mark.timeout(240)
KILLS = 4


def library(env: dict) -> set[str]:
    """The paths `ember models --json` lists (it scans the folder and stores its rows)."""
    listing = start(["-m", "engine.cli", "models", "--json"], env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
    out, err = listing.communicate(timeout=120)
    assert listing.returncode == 0, err[-2000:]
    return {m["path"] for m in json.loads(out)}


def test_download_killed_at_random_points_resumes_and_never_lists_a_half_file(hub_server, ember_home, smollm2_path):
    rng = kill_points("download")
    env = dict(os.environ, HF_ENDPOINT=hub_server.url, EMBER_HOME=str(ember_home))
    size = smollm2_path.stat().st_size
    dest = ember_home / "models" / SMOL_REPO / SMOL_FILE
    part = part_path(dest)
    db = ember_home / "ember.db"
    hub_server.faults.rate = 40_000_000  # about 2.5 s for the whole file
    # kill points: fractions of the file in random order, and once when the last byte is on disk
    fractions = sorted(rng.uniform(0.05, 0.95) for _ in range(KILLS - 1)) + [1.0]
    kept_sizes = []
    for fraction in fractions:
        before = part.stat().st_size if part.exists() else 0
        process = start(["-m", "engine.cli", "download", SMOL_REPO, SMOL_FILE], env=env,
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        target = min(size, max(before + 1, int(size * fraction)))
        try:
            wait_for(lambda goal=target: dest.exists() or (part.exists() and part.stat().st_size >= goal), 60,
                     f"the download reaching {fraction:.0%}", process)
        finally:
            sigkill(process)
            process.stderr.close()
        print(f"killed at {fraction:.0%} of the file", flush=True)
        if dest.exists():  # the last kill came after the rename: a whole, verified file, nothing half
            assert fraction == 1.0 and not part.exists()
            assert filecmp.cmp(dest, smollm2_path, shallow=False)
            break
        kept = part.stat().st_size
        assert before <= kept <= size, "the part lost bytes it had"
        assert PartRecord.load(sidecar_path(dest)).state in ("downloading", "verifying")
        kept_sizes.append(kept)
        listed = library(env)
        assert str(dest) not in listed and not any(p.endswith(".part") for p in listed)
        assert integrity(db) == "ok"
        time.sleep(0.1)  # let the server notice the dead connection
    hub_server.faults.rate = None
    resumed_from = len(hub_server.stats.range_starts)
    last = start(["-m", "engine.cli", "download", SMOL_REPO, SMOL_FILE], env=env, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    out, err = last.communicate(timeout=120)
    assert last.returncode == 0, err[-2000:]
    assert out.strip() == str(dest) and not part.exists()
    assert filecmp.cmp(dest, smollm2_path, shallow=False)
    starts = hub_server.stats.range_starts
    assert starts[0] == 0 and starts[1:len(kept_sizes)] == kept_sizes[:-1]  # each run went on from the part
    if len(starts) > resumed_from:  # the last run still had bytes to fetch: from where the part ended
        assert starts[resumed_from] == kept_sizes[-1]
    assert str(dest) in library(env)
    assert integrity(db) == "ok"


def test_the_narrowest_kill_points_verifying_and_just_renamed(hub_server, ember_home, smollm2_path):
    """Kill points too short to hit by chance, laid out by hand as a SIGKILL leaves them: (1) during the
    check of the last byte (the part whole, the sidecar `verifying`): the queue resumes it after a restart
    and the part is checked again; (2) between the rename and saving `done`: the file is the verified one,
    so the next run marks it done instead of leaving it `verifying` in the queue for ever."""
    from engine.hub.download import download
    from engine.hub.queue import DownloadQueue
    from engine.paths import EmberPaths
    from tests.support.hub_fixtures import drain

    paths = EmberPaths(ember_home).ensure()
    dest = paths.model_destination(SMOL_REPO, SMOL_FILE)
    dest.parent.mkdir(parents=True)
    part_path(dest).write_bytes(smollm2_path.read_bytes())
    PartRecord(SMOL_REPO, "main", SMOL_FILE, size=smollm2_path.stat().st_size, state="verifying").save(
        sidecar_path(dest))
    queue = DownloadQueue(paths, hub_server.url)
    assert [i.key for i in queue.to_resume()] == [str(dest)]
    result, _ = drain(queue.run(str(dest)))
    assert result == dest and filecmp.cmp(dest, smollm2_path, shallow=False)
    assert PartRecord.load(sidecar_path(dest)).state == "done" and not queue.to_resume()
    assert hub_server.stats.bytes_served == 0  # checked again on disk, not fetched again

    PartRecord.load(sidecar_path(dest)).save(sidecar_path(dest), state="verifying")  # as if killed before "done"
    result, events = drain(download(SMOL_REPO, SMOL_FILE, paths=paths, endpoint=hub_server.url))
    assert result == dest and "already downloaded" in events[-1].message
    assert PartRecord.load(sidecar_path(dest)).state == "done" and not queue.to_resume()
