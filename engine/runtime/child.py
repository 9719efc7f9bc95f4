"""ChildProcess: one supervised child process (a model host, a document parser, the trainer).

Every Ember child follows the same protocol (its side is engine/runtime/child_protocol.py):
- stdin stays open as its lifeline: the child exits when it closes, so a parent that stops or is
  killed leaves no child behind;
- stdout carries events, one JSON object a line (`{"type": "ready", ...}`); a line that is not a
  JSON object becomes `{"type": "output", "text": ...}` and is copied to the log;
- stderr is free text: all of it goes to a log file, the last lines stay in memory for error messages.

Reader threads drain stdout and stderr for the child's whole life, so a child that prints a lot
never blocks on a full pipe, whether or not anyone reads its events. Stopping escalates: close
stdin (a polite child exits), then SIGTERM, then SIGKILL. `death()` says in words how it ended.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.jobs import CancelToken, Progress
from engine.runtime.process_memory import resident_bytes

try:
    import resource  # POSIX only; imported here, never in the forked child (see _limit_memory)
except ImportError:  # Windows
    resource = None

log = logging.getLogger(__name__)

EXIT_AFTER_STDOUT_S = 5.0  # how long a child that closed its stdout may take to exit

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # on PYTHONPATH, so `python -m engine...` works anywhere

CRASH_SIGNALS = frozenset({"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"})
MAX_LINE_BYTES = 256 * 1024  # a longer line is cut in pieces instead of growing without bound
MAX_BUFFERED_EVENTS = 1000  # beyond this, unread events wait for a reader, or are dropped when there is none


@dataclass(frozen=True)
class Limits:
    """Limits for a child that handles untrusted input (a PDF parser): it cannot take the machine with it."""

    memory_bytes: int | None = None  # address space (RLIMIT_AS; POSIX only): an allocation beyond it fails
    wall_s: float | None = None  # the supervisor kills the child after this many seconds


@dataclass(frozen=True)
class Death:
    """How a child process ended: by itself (`code`), by a signal (`signal`), on request or over time."""

    code: int | None  # the exit code when it exited by itself
    signal: str | None  # the signal's name ("SIGSEGV") when one ended it
    last_line: str  # the last meaningful line it wrote on stderr ("" when none)
    stopped: bool = False  # stop() was called: Ember ended it on purpose
    over_time: bool = False  # it ran past Limits.wall_s and was killed

    @property
    def crashed(self) -> bool:
        return self.signal in CRASH_SIGNALS

    @property
    def reason(self) -> str:
        """What happened, to end a sentence: f"The trainer stopped: {death.reason}."."""
        if self.over_time:
            return "it ran past its time limit and was stopped"
        if self.stopped:
            return "Ember stopped it"
        if self.crashed:
            return f"it crashed ({self.signal})"
        if self.signal == "SIGKILL":
            return "it was killed (SIGKILL: out of memory, or stopped from outside Ember)"
        if self.signal:
            return f"it was stopped by {self.signal}"
        return self.last_line or f"exit code {self.code}"


def explain_death(returncode: int, stderr_text: str = "", *, stopped: bool = False,
                  over_time: bool = False) -> Death:
    """Turn a returncode (negative: the signal that ended it, as Popen reports) into a Death."""
    name = None
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
    return Death(code=None if name else returncode, signal=name, last_line=last_meaningful_line(stderr_text),
                 stopped=stopped, over_time=over_time)


def last_meaningful_line(text: str) -> str:
    """The last stderr line worth showing a user: not blank, not a traceback's frame lines."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line and not line.startswith(("Traceback", "File ", "^")):
            return line[:300]
    return ""


class ChildProcess:
    """One child process and the threads that read it. `start()`, then `wait_for()` / `events()`, then `stop()`.

    Read its events, or stop it: until the first is read, and while a caller is inside `events()` or
    `wait_for()`, a child that is MAX_BUFFERED_EVENTS ahead waits on its pipe; after that, with
    nobody reading, the oldest events are dropped and the child never waits.

    `env` holds additions to this process's environment: secrets (a token) go there, never in `argv`,
    which every user of the machine can read. `cwd` defaults to the project root so that a stray
    module in the user's folder cannot shadow ours under `python -m`.
    """

    def __init__(self, argv: Sequence[str], *, label: str, log_dir: Path | None = None,
                 env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 limits: Limits | None = None, tail_lines: int = 40) -> None:
        self.argv = [str(a) for a in argv]
        self.label = label
        self.log_dir = Path(log_dir) if log_dir else None
        self.env = dict(env or {})
        self.cwd = Path(cwd) if cwd else PROJECT_ROOT
        self.limits = limits or Limits()
        self.log_path: Path | None = None
        self.process: subprocess.Popen | None = None
        self._events: deque[dict] = deque(maxlen=MAX_BUFFERED_EVENTS)
        self._events_changed = threading.Condition()
        self._stdout_closed = False
        self._dropped_events = 0
        self._consumers = 0  # callers inside events() or wait_for(): they will read what comes
        self._read_any = False  # until the first event is read, someone is about to read
        self._stopping = False
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._log_file = None
        self._log_lock = threading.Lock()
        self._open_readers = 0
        self._readers: list[threading.Thread] = []
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._over_time = False
        self._timer: threading.Timer | None = None

    # --- start ----------------------------------------------------------------------------------
    def start(self) -> ChildProcess:
        """Spawn the child and its reader threads (and the wall-clock timer when there is a limit)."""
        if self.process is not None:
            raise RuntimeError(f"{self.label} was started already; make a new ChildProcess to run it again")
        env = dict(os.environ, **self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        limit_memory = self.limits.memory_bytes is not None and resource is not None
        if self.limits.memory_bytes is not None and resource is None:
            log.warning("%s: no memory limit on this system", self.label)
        self._log_file = self._open_log()
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=str(self.cwd), preexec_fn=self._limit_memory if limit_memory else None,
        )
        self._open_readers = 2
        for target, name in ((self._read_stdout, "stdout"), (self._read_stderr, "stderr")):
            thread = threading.Thread(target=target, name=f"{self.label}-{name}", daemon=True)
            thread.start()
            self._readers.append(thread)
        if self.limits.wall_s is not None:
            self._timer = threading.Timer(self.limits.wall_s, self._kill_for_time)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _limit_memory(self) -> None:
        """Runs in the forked child before exec: only a system call, no imports, no locks."""
        resource.setrlimit(resource.RLIMIT_AS, (self.limits.memory_bytes, self.limits.memory_bytes))

    def _open_log(self):
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", self.label)[:80]
        self.log_path = self.log_dir / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        return open(self.log_path, "a", encoding="utf-8", errors="replace")

    # --- state ----------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started); negative: killed by that signal."""
        return self.process.poll() if self.process else None

    def memory_used(self) -> int | None:
        """Resident memory of the child in bytes (Linux; None elsewhere or when it is gone)."""
        return resident_bytes(self.pid) if self.alive else None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit; its returncode, or None if it still runs after `timeout` seconds."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr_tail(self) -> str:
        """The child's last stderr lines (all of them once it has exited and its reader caught up)."""
        if not self.alive:
            self._finish_reading()
        return "\n".join(self._tail)

    def death(self) -> Death | None:
        """How the child ended, in words; None while it runs or before it started."""
        code = self.returncode
        if code is None:
            return None
        return explain_death(code, self.stderr_tail(), stopped=self._stopped, over_time=self._over_time)

    # --- events ---------------------------------------------------------------------------------
    def next_event(self, timeout: float) -> dict | None:
        """The next event, waiting up to `timeout` seconds; None when none came (see `finished`)."""
        with self._events_changed:
            self._events_changed.wait_for(lambda: self._events or self._stdout_closed, timeout)
            if not self._events:
                return None
            if len(self._events) == self._events.maxlen:
                self._events_changed.notify_all()  # a reader thread may be waiting for room
            self._read_any = True
            return self._events.popleft()

    @property
    def finished(self) -> bool:
        """No event will come any more: stdout is closed (the child exited) and every event was read."""
        with self._events_changed:
            return self._stdout_closed and not self._events

    def events(self, cancel: CancelToken | None = None) -> Iterator[dict]:
        """Every event in order until the child's stdout closes. Cancelling stops the child."""
        cancel = cancel or CancelToken()
        self._consumer_came()
        try:
            while not self.finished:
                if cancel.cancelled:
                    self.stop()
                    return
                event = self.next_event(0.1)
                if event is not None:
                    yield event
        finally:
            self._consumer_left()

    def wait_for(self, wanted: str | tuple[str, ...] | Callable[[dict], bool], *, timeout: float | None = None,
                 cancel: CancelToken | None = None, message: str = "Starting…",
                 tick_s: float = 0.1) -> Iterator[Progress]:
        """Wait for the first event that is `wanted` (a type, types, or a predicate); `return`s it.

        Use it as `event = yield from child.wait_for("ready", ...)`: while waiting it yields a
        Progress every `tick_s` ("Starting… 3.2 s"). Events that are not wanted are skipped.
        Returns None when the child exited first, or when `cancel` was cancelled (the child is then
        stopped). Past `timeout` seconds it stops the child and raises TimeoutError.
        """
        matches = wanted if callable(wanted) else (lambda event: event.get("type") in _as_tuple(wanted))
        cancel = cancel or CancelToken()
        remove = cancel.on_cancel(self._wake)
        started = time.monotonic()
        self._consumer_came()
        try:
            while True:
                event = self.next_event(tick_s)
                if event is not None:
                    if matches(event):
                        return event
                    log.debug("%s: skipped %s while waiting", self.label, event.get("type"))
                    continue
                if cancel.cancelled:
                    self.stop()
                    return None
                if self.finished or (not self.alive and self._drained()):
                    self.wait(EXIT_AFTER_STDOUT_S)  # stdout closes a moment before the exit is reaped
                    return None
                elapsed = time.monotonic() - started
                if timeout is not None and elapsed > timeout:
                    self.stop()
                    raise TimeoutError(f"{self.label} sent no {wanted!r} within {timeout:g} s")
                yield Progress(elapsed, None, "s", f"{message} {elapsed:.1f} s")
        finally:
            self._consumer_left()
            remove()

    def _consumer_came(self) -> None:
        with self._events_changed:
            self._consumers += 1

    def _consumer_left(self) -> None:
        with self._events_changed:
            self._consumers -= 1
            self._events_changed.notify_all()  # with nobody reading, the reader thread drops again

    def _drained(self) -> bool:
        """After an exit: give the stdout reader a moment for the last lines; True if none is left."""
        self._finish_reading()
        with self._events_changed:
            return not self._events

    def _wake(self) -> None:
        with self._events_changed:
            self._events_changed.notify_all()

    # --- stop -----------------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """Close stdin and wait (the child exits by itself), then SIGTERM and wait, then SIGKILL.

        Each wait is up to `timeout` seconds. Safe to call twice and from any thread.
        """
        with self._events_changed:  # the stdout reader must not wait for room any more
            self._stopping = True
            self._events_changed.notify_all()
        with self._stop_lock:
            process = self.process
            if process is None:
                return
            if self._timer is not None:
                self._timer.cancel()
            if process.poll() is None and self._stdout_closed:
                # It closed its stdout: it is already on its way out (a crash, a kill from outside).
                # Let it finish, so that its death is not taken for Ember's stop.
                self.wait(min(timeout, EXIT_AFTER_STDOUT_S))
            if process.poll() is None:
                self._stopped = True
                _close(process.stdin)
                if self.wait(timeout) is None:
                    log.info("%s ignored its stdin closing: SIGTERM", self.label)
                    process.terminate()
                    if self.wait(timeout) is None:
                        log.warning("%s ignored SIGTERM: SIGKILL", self.label)
                        process.kill()
                        process.wait()
            _close(process.stdin)
            self._finish_reading()

    def _kill_for_time(self) -> None:
        if self.alive:
            log.warning("%s ran past its %g s limit: killed", self.label, self.limits.wall_s)
            self._over_time = True
            self.process.kill()

    # --- reader threads -------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        """Turn each stdout line into an event; keep reading to the end so the child never blocks."""
        stream = self.process.stdout
        try:
            while line := stream.readline(MAX_LINE_BYTES):
                self._add_event(_parse_event(line.decode("utf-8", "replace")))
        except (OSError, ValueError):  # the pipe was closed under us
            pass
        finally:
            _close(stream)
            with self._events_changed:
                self._stdout_closed = True
                self._events_changed.notify_all()
            self._reader_done()

    def _add_event(self, event: dict) -> None:
        if event["type"] == "output":
            self._write_log(f"[stdout] {event['text'][:1000]}\n")
        with self._events_changed:
            # Someone is reading, or is about to (waiting for "ready", following a trainer): let them
            # catch up, the child waits on its pipe meanwhile. Nobody is (a host after ready): drop.
            while (len(self._events) == self._events.maxlen and (self._consumers or not self._read_any)
                   and not self._stopping):
                self._events_changed.wait()
            if len(self._events) == self._events.maxlen:
                self._dropped_events += 1
                if self._dropped_events == 1:
                    log.warning("%s: nobody reads its events; dropping the oldest", self.label)
            self._events.append(event)
            self._events_changed.notify_all()

    def _read_stderr(self) -> None:
        """Copy stderr to the log file and keep its last lines for error messages."""
        stream = self.process.stderr
        try:
            while raw := stream.readline(MAX_LINE_BYTES):
                line = raw.decode("utf-8", "replace")
                self._tail.append(line.rstrip()[:1000])
                self._write_log(line)
        except (OSError, ValueError):
            pass
        finally:
            _close(stream)
            self._reader_done()

    def _write_log(self, text: str) -> None:
        with self._log_lock:
            if self._log_file is not None:
                self._log_file.write(text)
                self._log_file.flush()

    def _reader_done(self) -> None:
        """The last reader to finish closes the log file."""
        with self._log_lock:
            self._open_readers -= 1
            if self._open_readers == 0 and self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def _finish_reading(self, timeout: float = 2.0) -> None:
        """Let the readers reach the end of the pipes (a grandchild holding them open must not hang us)."""
        deadline = time.monotonic() + timeout
        for thread in self._readers:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ChildProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _parse_event(line: str) -> dict:
    """One stdout line as an event: a JSON object with a "type", or an "output" event holding the text."""
    text = line.rstrip("\r\n")
    try:
        event = json.loads(text)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        return {"type": "output", "text": text}
    event.setdefault("type", "event")
    return event


def _as_tuple(wanted: str | tuple[str, ...]) -> tuple[str, ...]:
    return (wanted,) if isinstance(wanted, str) else tuple(wanted)


def _close(stream) -> None:
    if stream is None:
        return
    try:
        stream.close()
    except OSError:
        pass

