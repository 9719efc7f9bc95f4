"""Generation killed at random points (while the home opens, the model loads, a reply streams or is
saved), then restarted: every reply saved before the kill is still there word for word, the cut-off reply
keeps its text and becomes `interrupted`, the database passes its integrity check, the model process goes
away with the app, and the next start streams a reply to the end."""

from __future__ import annotations

import subprocess

import pytest

from engine.paths import EmberPaths
from tests.kill.killing import integrity, kill_points, none_left, read_only, sigkill, start

pytestmark = [pytest.mark.timeout(240), pytest.mark.skipif(not __import__("os").path.isdir("/proc"),
                                                             reason="finds the model processes through /proc")]
KILLS = 5


def driver(model, turns: int, max_tokens: int) -> subprocess.Popen:
    return start(["-m", "tests.kill.generation_driver", str(model), "--turns", str(turns),
                  "--max-tokens", str(max_tokens)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def messages(db) -> dict[int, tuple[str, str, str]]:
    """id -> (role, status, content) of every message; empty before the database exists."""
    if not db.exists():
        return {}
    conn = read_only(db)
    try:
        return {r["id"]: (r["role"], r["status"], r["content"])
                for r in conn.execute("SELECT id, role, status, content FROM messages")}
    except Exception as exc:  # the very first start may be killed before the schema exists
        if "no such table" in str(exc):
            return {}
        raise
    finally:
        conn.close()


def test_generation_killed_at_random_points_keeps_every_saved_reply(ember_home, smollm2_path):
    rng = kill_points("generation")
    db = EmberPaths(ember_home).db
    ever: dict[int, tuple[str, str, str]] = {}  # every message seen, as last seen
    cut_off: set[int] = set()
    for round_ in range(KILLS):
        process = driver(smollm2_path, turns=50, max_tokens=160)
        try:
            process.wait(timeout=rng.uniform(0.2, 5.0))
        except subprocess.TimeoutExpired:
            pass
        before = messages(db)
        assert sigkill(process) < 0, f"round {round_}: the driver ended by itself: {process.stderr.read()[-2000:]}"
        out, err = process.communicate()
        assert not none_left(ember_home), "the model process outlived the killed app"
        if db.exists():
            assert integrity(db) == "ok"
        after = messages(db)
        done = {int(line.split()[1]) for line in out.splitlines() if line.startswith("DONE")}
        for message_id, (role, status, content) in before.items():
            assert message_id in after, f"message {message_id} was lost"
            if status == "streaming":  # more text may have been saved between the look and the kill
                assert after[message_id][2].startswith(content)
            else:
                assert after[message_id] == (role, status, content)
        for message_id in done:
            assert after[message_id][1] == "complete" and after[message_id][2].strip()
        for message_id, (role, status, content) in ever.items():
            if message_id not in cut_off:
                assert after[message_id] == (role, status, content), f"message {message_id} changed"
        cut_off |= {i for i, (_, status, _) in after.items() if status == "streaming"}
        ever.update(after)
        print(f"round {round_}: {len(after)} messages, {len(done)} replies finished, "
              f"{len(cut_off)} cut off so far", flush=True)

    final = driver(smollm2_path, turns=1, max_tokens=24)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err[-2000:]
    assert integrity(db) == "ok"
    after = messages(db)
    finished = int(next(line for line in out.splitlines() if line.startswith("DONE")).split()[1])
    assert after[finished][1] == "complete" and after[finished][2].strip()
    assert not [i for i, (_, status, _) in after.items() if status == "streaming"]
    for message_id, (role, status, content) in ever.items():
        if message_id in cut_off:  # the next start marked it; its text is the text saved before the kill
            assert after[message_id][1] == "interrupted" and after[message_id][2] == content
        else:
            assert after[message_id] == (role, status, content)
    assert cut_off, "no kill landed in the middle of a reply: the kill points teach nothing"
