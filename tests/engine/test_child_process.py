"""ChildProcess with small real Python children: events, logs, stop escalation, deaths explained, limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from engine.jobs import CancelToken
from engine.runtime.child import MAX_BUFFERED_EVENTS, ChildProcess, Limits
from tests.support.processes import pid_alive

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
PRELUDE = """\
import json, os, signal, sys, time
from engine.runtime.child_protocol import emit, exit_when_parent_goes
"""


def write_child(folder: Path, body: str, name: str = "child.py") -> Path:
    script = folder / name
    script.write_text(PRELUDE + textwrap.dedent(body))
    return script


@pytest.fixture
def spawn(tmp_path):
    """Start a child running `body` (after PRELUDE) from tmp_path; every child is stopped at the end."""
    children: list[ChildProcess] = []

    def start(body: str, **options) -> ChildProcess:
        options.setdefault("log_dir", tmp_path / "logs")
        child = ChildProcess([sys.executable, str(write_child(tmp_path, body))], label="test-child",
                             cwd=tmp_path, **options)
        children.append(child)
        return child.start()

    yield start
    for child in children:
        child.stop(timeout=1)


def run_to_end(generator):
    """Drive a wait_for generator: (the Progress ticks it yielded, the value it returned)."""
    ticks = []
    while True:
        try:
            ticks.append(next(generator))
        except StopIteration as end:
            return ticks, end.value


def test_events_arrive_in_order_and_env_reaches_the_child(spawn):
    child = spawn("""
        emit({"type": "ready", "secret": os.environ["EMBER_TEST_SECRET"]})
        for n in range(5):
            emit({"type": "step", "n": n})
        emit({"no": "type"})
    """, env={"EMBER_TEST_SECRET": "s3cret"})
    events = list(child.events())
    assert events[0] == {"type": "ready", "secret": "s3cret"}
    assert [e["n"] for e in events[1:6]] == [0, 1, 2, 3, 4]
    assert events[6] == {"type": "event", "no": "type"}
    assert child.wait(10) == 0
    assert "s3cret" not in " ".join(child.argv)


def test_output_that_is_not_json_becomes_an_output_event_and_goes_to_the_log(spawn):
    child = spawn("""
        print("hello from a library", flush=True)
        print("[1, 2]", flush=True)
        print("{broken", flush=True)
        emit({"type": "ready"})
    """)
    events = list(child.events())
    assert events == [{"type": "output", "text": "hello from a library"}, {"type": "output", "text": "[1, 2]"},
                      {"type": "output", "text": "{broken"}, {"type": "ready"}]
    child.stop()
    assert "[stdout] hello from a library" in child.log_path.read_text()


def test_a_child_that_floods_stdout_after_ready_never_blocks(spawn):
    """Nobody reads events after ready (the host case): the child must still write 20 MB and finish."""
    child = spawn("""
        emit({"type": "ready"})
        line = json.dumps({"type": "tick", "pad": "x" * 1000}) + "\\n"
        for _ in range(20000):
            sys.stdout.write(line)
        emit({"type": "last"})
        print("x" * 600000, flush=True)  # one line longer than a read: cut in pieces, not a crash
    """)
    _, ready = run_to_end(child.wait_for("ready", timeout=20))
    assert ready == {"type": "ready"}
    assert child.wait(30) == 0, "the child blocked on a full stdout pipe"
    left = list(child.events())
    assert len(left) <= MAX_BUFFERED_EVENTS  # the oldest were dropped, memory stays bounded
    assert {"type": "last"} in left and left[-1]["type"] == "output"


def test_a_reader_that_falls_behind_loses_nothing(spawn):
    """Someone follows the events (a trainer's losses) but pauses: the child waits for them, nothing is dropped."""
    count = MAX_BUFFERED_EVENTS * 3
    child = spawn(f"""
        emit({{"type": "ready"}})
        for n in range({count}):
            emit({{"type": "tick", "n": n}})
        emit({{"type": "last"}})
    """)
    seen = []
    for event in child.events():
        seen.append(event)
        if len(seen) == 1:
            time.sleep(1.0)  # meanwhile the child writes far more than the buffer holds
    assert [e["type"] for e in seen[:1]] == ["ready"] and seen[-1] == {"type": "last"}
    assert [e["n"] for e in seen[1:-1]] == list(range(count))
    assert child.wait(10) == 0


def test_a_flood_before_anyone_reads_keeps_the_first_event(spawn):
    """The flood starts before the caller first asks: "ready" still reaches it."""
    child = spawn(f"""
        emit({{"type": "ready"}})
        for n in range({MAX_BUFFERED_EVENTS * 3}):
            emit({{"type": "tick", "n": n}})
    """)
    time.sleep(1.0)  # the caller is late
    _, ready = run_to_end(child.wait_for("ready", timeout=20))
    assert ready == {"type": "ready"}
    assert child.wait(10) == 0  # once nobody reads, the rest is dropped and the child finishes


def test_stderr_goes_to_the_log_file_and_its_last_line_explains_the_exit(spawn):
    child = spawn("""
        for n in range(100):
            print(f"loading part {n}", file=sys.stderr)
        print("Traceback (most recent call last):", file=sys.stderr)
        print('  File "x.py", line 1', file=sys.stderr)
        print("ValueError: the file is broken", file=sys.stderr)
        print("", file=sys.stderr)
        sys.exit(3)
    """)
    assert child.wait(10) == 3
    death = child.death()
    assert death.code == 3 and death.signal is None
    assert death.reason == "ValueError: the file is broken"
    tail = child.stderr_tail().split("\n")
    assert len(tail) == 40 and tail[-2] == "ValueError: the file is broken"
    text = child.log_path.read_text()
    assert "loading part 0\n" in text and "ValueError: the file is broken" in text
    assert child.log_path.name.startswith("test-child-")


def test_a_child_exits_by_itself_when_its_stdin_closes(spawn):
    child = spawn("""
        exit_when_parent_goes(code=7)
        emit({"type": "ready"})
        time.sleep(60)
    """)
    run_to_end(child.wait_for("ready", timeout=20))
    child.process.stdin.close()
    assert child.wait(10) == 7


def test_stop_closes_stdin_first_and_a_polite_child_exits_on_it(spawn):
    child = spawn("""
        exit_when_parent_goes()
        emit({"type": "ready"})
        time.sleep(60)
    """)
    run_to_end(child.wait_for("ready", timeout=20))
    started = time.monotonic()
    child.stop(timeout=5)
    assert child.returncode == 0  # no signal was needed
    assert time.monotonic() - started < 5
    assert child.death().stopped and child.death().reason == "Ember stopped it"


def test_stop_sends_sigterm_to_a_child_that_ignores_its_stdin(spawn):
    child = spawn("""
        emit({"type": "ready"})
        time.sleep(60)
    """)
    run_to_end(child.wait_for("ready", timeout=20))
    started = time.monotonic()
    child.stop(timeout=0.5)
    elapsed = time.monotonic() - started
    assert child.returncode == -signal.SIGTERM
    assert 0.45 <= elapsed < 0.5 * 2 + 2


def test_stop_kills_a_child_that_ignores_sigterm_and_is_safe_from_many_threads(spawn):
    child = spawn("""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit({"type": "ready"})
        while True:
            time.sleep(1)
    """)
    run_to_end(child.wait_for("ready", timeout=20))
    started = time.monotonic()
    stoppers = [threading.Thread(target=child.stop, kwargs={"timeout": 0.5}) for _ in range(3)]
    for thread in stoppers:
        thread.start()
    for thread in stoppers:
        thread.join(10)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in stoppers)
    assert child.returncode == -signal.SIGKILL
    assert 0.9 <= elapsed < 0.5 * 2 + 2
    child.stop()  # again: nothing to do
    assert child.death().stopped  # Ember's own SIGKILL is not "out of memory"


def test_a_segfault_is_named_as_a_crash(spawn):
    child = spawn("""
        import ctypes, resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        print("about to read address 0", file=sys.stderr, flush=True)
        ctypes.string_at(0)
    """)
    assert child.wait(10) == -signal.SIGSEGV
    death = child.death()
    assert death.crashed and death.signal == "SIGSEGV"
    assert death.reason == "it crashed (SIGSEGV)"
    assert death.last_line == "about to read address 0"


def test_a_child_killed_from_outside_is_named_as_killed(spawn):
    child = spawn("""
        emit({"type": "ready"})
        time.sleep(60)
    """)
    run_to_end(child.wait_for("ready", timeout=20))
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL
    death = child.death()
    assert not death.crashed and not death.stopped
    assert death.reason.startswith("it was killed (SIGKILL: out of memory")


def test_stop_does_not_claim_a_child_that_was_already_dying(spawn):
    """Its stdout closes a moment before the kernel can reap it: a stop() in that moment must not
    take the death for Ember's own (the trainer's SIGKILL read as "Ember stopped it")."""
    child = spawn("""
        emit({"type": "ready"})
        os.close(1)  # stdout closes first, as it does while a killed process tears down
        time.sleep(2.0)  # a window wide enough for a busy machine (stop() waits up to 5 s)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    run_to_end(child.wait_for("ready", timeout=20))
    deadline = time.monotonic() + 10
    while not child.finished and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.finished and child.alive  # the window: no more output, not yet reaped
    child.stop(timeout=5)
    death = child.death()
    assert death.signal == "SIGKILL" and not death.stopped
    assert death.reason.startswith("it was killed (SIGKILL")


def test_wait_for_ticks_and_cancel_stops_the_child(spawn):
    child = spawn("""
        exit_when_parent_goes()
        time.sleep(60)  # never ready
    """)
    cancel = CancelToken()
    threading.Timer(0.5, cancel.cancel).start()
    ticks, event = run_to_end(child.wait_for("ready", timeout=30, cancel=cancel, message="Loading x…"))
    assert event is None
    assert not child.alive and child.death().stopped
    assert ticks and ticks[-1].message.startswith("Loading x… ") and ticks[-1].unit == "s"
    assert ticks[-1].done >= ticks[0].done


def test_wait_for_returns_none_when_the_child_exits_first(spawn):
    child = spawn("""
        emit({"type": "step"})
        print("cannot load", file=sys.stderr)
        sys.exit(1)
    """)
    _, event = run_to_end(child.wait_for("ready", timeout=20))
    assert event is None
    assert child.death().code == 1 and child.death().last_line == "cannot load"


def test_wait_for_takes_a_predicate_and_skips_other_events(spawn):
    child = spawn("""
        exit_when_parent_goes()
        for n in range(4):
            emit({"type": "step", "n": n})
        time.sleep(60)
    """)
    _, event = run_to_end(child.wait_for(lambda e: e.get("n") == 2, timeout=20))
    assert event == {"type": "step", "n": 2}
    assert child.next_event(5) == {"type": "step", "n": 3}


def test_wait_for_past_its_timeout_stops_the_child_and_raises(spawn):
    child = spawn("exit_when_parent_goes()\ntime.sleep(60)\n")
    with pytest.raises(TimeoutError):
        run_to_end(child.wait_for(("ready", "error"), timeout=0.3))
    assert not child.alive


def test_memory_used_is_the_childs_resident_memory(spawn):
    child = spawn("""
        exit_when_parent_goes()
        emit({"type": "ready"})
        time.sleep(60)
    """)
    run_to_end(child.wait_for("ready", timeout=20))
    assert child.memory_used() > 1_000_000
    child.stop(timeout=1)
    assert child.memory_used() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is reliable on Linux")
def test_a_memory_limit_makes_a_big_allocation_fail_in_the_child(spawn):
    child = spawn("""
        emit({"type": "ready"})
        block = bytearray(2 * 1024**3)
        emit({"type": "allocated"})
    """, limits=Limits(memory_bytes=1024**3))
    events = [e["type"] for e in child.events()]
    assert child.wait(10) == 1
    assert events == ["ready"]
    assert child.death().reason == "MemoryError"


def test_a_time_limit_kills_a_child_that_runs_too_long(spawn):
    child = spawn("time.sleep(60)\n", limits=Limits(wall_s=0.5))
    assert child.wait(10) == -signal.SIGKILL
    assert child.death().over_time and "time limit" in child.death().reason


def test_the_child_exits_when_its_parent_is_killed(tmp_path):
    """kill -9 the parent: nothing runs its cleanup, yet the child sees its stdin close and exits."""
    grandchild = write_child(tmp_path, """
        exit_when_parent_goes()
        time.sleep(60)
    """, name="grandchild.py")
    parent = tmp_path / "parent.py"
    parent.write_text(textwrap.dedent(f"""
        import sys, time
        from engine.runtime.child import ChildProcess
        child = ChildProcess([sys.executable, {str(grandchild)!r}], label="grandchild").start()
        print(child.pid, flush=True)
        time.sleep(60)
    """))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, str(parent)], stdout=subprocess.PIPE, text=True, env=env,
                               cwd=tmp_path)
    child_pid = int(process.stdout.readline())
    try:
        assert pid_alive(child_pid)
        process.kill()
        process.wait()
        deadline = time.monotonic() + 10
        while pid_alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(child_pid)
    finally:
        process.stdout.close()
        if pid_alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)
