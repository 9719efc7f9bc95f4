"""`ember search / download / models`: JSON outputs, exit codes, the home lock, and a SIGKILL mid-download."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import main
from engine.hub.sidecar import PartRecord, part_path, sidecar_path
from engine.paths import EmberPaths
from engine.store.db import connect
from engine.store.lock import HomeLock
from engine.store.models_repo import ModelRepository
from tests.support.hub_fixtures import SMOL_FILE, SMOL_REPO, closed_port_url

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]


def run_json(capsys, *argv):
    code = main([*argv])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_search_json_sorted(hub_server, capsys):
    code, results = run_json(capsys, "search", "", "--sort", "likes", "--limit", "2", "--json")
    assert code == 0
    assert [r["repo_id"] for r in results] == ["TheBloke/Mistral-7B-Instruct-v0.2-GGUF",
                                               "Qwen/Qwen2.5-7B-Instruct-GGUF"]
    assert set(results[0]) >= {"author", "downloads", "likes", "last_modified", "license", "tags"}


def test_search_text_table(hub_server, capsys):
    assert main(["search", "smol"]) == 0
    out = capsys.readouterr().out
    assert SMOL_REPO in out and "12,000" in out and "apache-2.0" in out


def test_download_without_a_file_lists_and_downloads_nothing(hub_server, capsys, ember_home, known_bandwidth):
    code, files = run_json(capsys, "download", "Qwen/Qwen2.5-7B-Instruct-GGUF", "--json")
    assert code == 0
    q8 = next(f for f in files if f["quantization"] == "Q8_0")
    assert q8["split"] and len(q8["parts"]) == 2 and q8["fit"]["fit"] in ("full_gpu", "partial", "cpu", "none")
    assert q8["fit"]["tokens_per_s"] > 0
    assert main(["download", SMOL_REPO]) == 0
    out = capsys.readouterr().out
    assert "Q4_1" in out and "fit at 4096 ctx" in out and "tokens/s" in out
    assert hub_server.stats.ranges == [] and not (ember_home / "models").exists()


def test_download_a_file_by_pattern(hub_server, capsys, ember_home, smollm2_path):
    code, result = run_json(capsys, "download", SMOL_REPO, "*q4_1*", "--json")
    assert code == 0
    dest = Path(result["path"])
    assert dest == ember_home / "models" / SMOL_REPO / SMOL_FILE
    assert filecmp.cmp(dest, smollm2_path, shallow=False)


def test_download_errors_and_exit_codes(hub_server, capsys):
    code, error = run_json(capsys, "download", "nobody/nothing", "x.gguf", "--json")
    assert code == 1 and error["error"] == "No model named nobody/nothing on the Hub." and error["hint"]
    code, error = run_json(capsys, "download", SMOL_REPO, "*Q9_9*", "--json")
    assert code == 1 and "matches" in error["error"]
    code, error = run_json(capsys, "download", SMOL_REPO, "*.gguf", "--json")
    assert code == 1 and "matches 4 models" in error["error"]
    code, error = run_json(capsys, "download", "evil/escape-GGUF", "../../evil.gguf", "--json")
    assert code == 1 and error["error"].startswith("Refused the path")
    with pytest.raises(SystemExit) as usage:
        main(["search", "x", "--sort", "stars"])
    assert usage.value.code == 2
    assert hub_server.stats.bytes_served == 0


def test_unreachable_hub_exit_1_with_a_clear_message(monkeypatch, capsys):
    endpoint = closed_port_url()
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    code, error = run_json(capsys, "search", "llama", "--json")
    assert code == 1 and error["error"].startswith(f"Could not reach the Hub at {endpoint}: check your network")


def test_download_refuses_while_the_home_is_locked(hub_server, capsys, ember_home):
    with HomeLock(EmberPaths(ember_home).lock).acquire("Ember window"):
        code, error = run_json(capsys, "download", SMOL_REPO, SMOL_FILE, "--json")
    assert code == 1 and "in use by Ember window" in error["error"]
    assert hub_server.stats.bytes_served == 0


def test_models_json_lists_the_library(hub_server, capsys, ember_home):
    assert main(["download", SMOL_REPO, SMOL_FILE]) == 0
    capsys.readouterr()
    code, models = run_json(capsys, "models", "--json")
    assert code == 0
    assert [m["source"] for m in models] == ["starter", "hub"]
    for model in models:
        assert {"path", "source", "sha256", "architecture", "quantization", "context_length"} <= set(model)
    assert models[1]["sha256"] == hub_server.repos[SMOL_REPO].files[SMOL_FILE].sha256
    assert models[1]["path"] == str(ember_home / "models" / SMOL_REPO / SMOL_FILE)


def cli(*argv: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine.cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_download_then_resume_from_the_part(hub_server, ember_home, smollm2_path):
    env = dict(os.environ, HF_ENDPOINT=hub_server.url, EMBER_HOME=str(ember_home))
    size = smollm2_path.stat().st_size
    dest = ember_home / "models" / SMOL_REPO / SMOL_FILE
    hub_server.faults.rate = 25_000_000  # about 4 s for the whole file
    proc = cli("download", SMOL_REPO, SMOL_FILE, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (part_path(dest).exists() and part_path(dest).stat().st_size > size * 0.4):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the download did not progress"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    kept = part_path(dest).stat().st_size
    assert 0 < kept < size and not dest.exists()
    assert PartRecord.load(sidecar_path(dest)).state == "downloading"  # cut off: resumable
    hub_server.faults.rate = None
    time.sleep(0.2)  # let the server notice the dead connection
    served_before = hub_server.stats.bytes_served
    again = cli("download", SMOL_REPO, SMOL_FILE, env=env)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert out.strip() == str(dest)
    assert filecmp.cmp(dest, smollm2_path, shallow=False)  # byte-identical
    assert hub_server.stats.range_starts[-1] == kept > 0  # resumed where the part ended, not from zero
    assert hub_server.stats.bytes_served - served_before == size - kept
    assert "SHA-256 verified" in err


def hold_home_lock(home: Path) -> subprocess.Popen:
    """Another process (standing in for the window) that holds the home lock until its stdin closes."""
    code = ("import sys; from engine.store.lock import HomeLock; HomeLock(sys.argv[1]).acquire('Ember window'); "
            "print('held', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(EmberPaths(home).lock)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def models_json(env: dict) -> tuple[list, str]:
    proc = cli("models", "--json", env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out), err  # stdout is pure JSON


def stored_paths(db: Path) -> set[str]:
    conn = connect(db)
    try:
        return {row.path for row in ModelRepository(conn).all()}
    finally:
        conn.close()


def test_models_writes_only_with_the_home_lock_and_lists_read_only_without_it(ember_home, smollm2_path):
    env = dict(os.environ, EMBER_HOME=str(ember_home))
    db = EmberPaths(ember_home).db
    folder = ember_home / "models" / "acme" / "tiny-GGUF"
    folder.mkdir(parents=True)
    (folder / "first.gguf").write_bytes(b"not a GGUF")  # listed, with the reason it cannot be used

    holder = hold_home_lock(ember_home)
    try:
        listing, err = models_json(env)
    finally:
        holder.communicate()
    assert {m["path"] for m in listing} == {str(smollm2_path), str(folder / "first.gguf")}
    assert "read-only" in err and "in use by Ember window" in err
    assert not db.exists()  # not even created

    listing, err = models_json(env)  # the lock is free: the scan stores its rows
    assert "read-only" not in err
    assert stored_paths(db) == {str(smollm2_path), str(folder / "first.gguf")}
    before = db.read_bytes()  # the free run's connection closed: its WAL is checkpointed into the file

    (folder / "second.gguf").write_bytes(b"not a GGUF either")
    holder = hold_home_lock(ember_home)
    try:
        listing, err = models_json(env)
    finally:
        holder.communicate()
    assert str(folder / "second.gguf") in {m["path"] for m in listing} and "read-only" in err
    wal = db.with_name(db.name + "-wal")  # a read-only reader may leave SQLite's (empty) -wal and -shm
    assert db.read_bytes() == before and (not wal.exists() or wal.stat().st_size == 0)
    assert stored_paths(db) == {str(smollm2_path), str(folder / "first.gguf")}
