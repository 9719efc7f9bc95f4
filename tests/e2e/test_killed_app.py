"""The app process is killed (SIGKILL) in the middle of a reply: the database stays consistent, the
partial reply is kept, the model process goes away by itself, and the next start marks the reply as
interrupted. While the first app runs, a second start on the same home refuses with a clear message."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import pid_alive

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(240)


def app_env(home: Path, **extra) -> dict:
    env = dict(os.environ, EMBER_HOME=str(home), QT_QPA_PLATFORM="offscreen", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def read_reply(db: Path, message_id: int):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT status, content FROM messages WHERE id = ?", (message_id,)).fetchone()
    finally:
        conn.close()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="watches the model process through /proc")
def test_sigkill_during_a_reply_keeps_it_and_marks_it_interrupted(ember_home):
    driver = subprocess.Popen([sys.executable, str(ROOT / "tests/e2e/kill_driver.py")], cwd=ROOT,
                              env=app_env(ember_home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = driver.stdout.readline()
        assert line.startswith("STREAMING"), line + driver.stderr.read()[-2000:]
        _, message_id, host_pid = line.split()
        message_id, host_pid = int(message_id), int(host_pid)
        db = ember_home / "ember.db"
        deadline = time.monotonic() + 30
        while not read_reply(db, message_id)[1] and time.monotonic() < deadline:
            time.sleep(0.1)  # the partial reply is saved at least every 0.5 s

        second = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=app_env(ember_home),
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "in use" in second.stderr and "Close the other Ember window" in second.stderr

        time.sleep(0.3)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        driver.stdout.close()
        driver.stderr.close()

    deadline = time.monotonic() + 15
    while pid_alive(host_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(host_pid), "the model process outlived the killed app"

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    status, kept = read_reply(db, message_id)
    assert status == "streaming" and kept.strip()

    started = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, timeout=60, capture_output=True, text=True,
                             env=app_env(ember_home, EMBER_EXIT_AFTER_FIRST_PAINT="1"))
    assert started.returncode == 0, started.stderr[-2000:]
    assert json.loads(started.stdout.strip().splitlines()[-1])["first_paint_time"] > 0
    status, after = read_reply(db, message_id)
    assert status == "interrupted" and after == kept
