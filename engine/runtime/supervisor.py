"""RuntimeHost: starts, watches and stops one runtime host process (host_main.py) for one GGUF.

A bad file, an out-of-memory load or a crash ends only that process; the supervisor turns what it
printed into a typed error. A chat template that hangs makes the host exit with TEMPLATE_TIMEOUT_EXIT:
the supervisor starts it again with a built-in format and keeps the notice for the user.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from engine.errors import (
    BadModelFile,
    HostDied,
    HostStartFailed,
    InvalidInput,
    OutOfMemory,
    TemplateError,
    UnsupportedModel,
)
from engine.gguf.adapter import inspect_adapter
from engine.gguf.inspect import inspect_gguf
from engine.jobs import CancelToken, Progress
from engine.runtime.client import HostClient
from engine.runtime.fit import choose_gpu_layers
from engine.runtime.hardware import default_threads, probe_hardware
from engine.runtime.process_memory import resident_bytes
from engine.runtime.protocol import TEMPLATE_TIMEOUT_EXIT, TOKEN_ENV

log = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parents[2]

# What llama.cpp prints, mapped to what the user is told.
_CAUSES = [
    (re.compile(r"unknown model architecture|unknown architecture", re.I), UnsupportedModel,
     "llama.cpp does not know this model's architecture."),
    (re.compile(r"out of memory|failed to allocate|cudaMalloc failed|unable to allocate|alloc.*failed", re.I),
     OutOfMemory, "The model does not fit in memory."),
    (re.compile(r"invalid magic|gguf_init|failed to read|not a gguf|tensor .* data is not within", re.I),
     BadModelFile, "The model file is damaged or not a GGUF file."),
]


@dataclass(frozen=True)
class HostSettings:
    model_path: str
    context_length: int = 4096
    gpu_layers: int | str = "auto"  # "auto": all that fit in free VRAM (0 on a CPU-only machine)
    threads: int | None = None  # None: cores - 1
    flash_attention: bool = False
    lora_path: str | None = None
    chat_format: str | None = None  # None: the GGUF template; or "none" or a built-in format name
    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    keep_running_without_parent: bool = False
    start_timeout_s: float = 300.0
    role: str = "chat"  # "chat", or "embedding": an embedding model serving /ember/embed (HostClient.embed)


def resolve_threads(threads: int | None) -> int:
    """The user's thread count, or the default (`hardware.default_threads`: cores - 1)."""
    if threads is not None:
        if threads < 1:
            raise InvalidInput("Threads must be at least 1.")
        return threads
    return default_threads()


def resolve_gpu_layers(settings: HostSettings, model_info) -> int:
    if settings.gpu_layers != "auto":
        try:
            layers = int(settings.gpu_layers)
        except ValueError as exc:
            raise InvalidInput(f"GPU layers must be a number or 'auto', not {settings.gpu_layers!r}.") from exc
        return max(-1, layers)
    return choose_gpu_layers(model_info, probe_hardware(), settings.context_length)


class RuntimeHost:
    """One model process. Use `start()` (a generator of Progress) or `start_blocking()`, then `client()`."""

    def __init__(self, settings: HostSettings, log_dir: Path | None = None) -> None:
        self.settings = settings
        self.log_dir = Path(log_dir) if log_dir else None
        self.token = settings.api_key or secrets.token_urlsafe(32)
        self.info: dict = {}
        self.model_info = None
        self.notice: str | None = None
        self.log_path: Path | None = None
        self._process: subprocess.Popen | None = None
        self._stderr_tail: deque[str] = deque(maxlen=40)
        self._lock = threading.Lock()

    # --- state --------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def port(self) -> int:
        return int(self.info["port"])

    @property
    def template(self) -> str:
        return self.info.get("template", "")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def memory_used(self) -> int | None:
        """Resident memory of the host process in bytes (Linux; None elsewhere or when it is gone)."""
        return resident_bytes(self.pid) if self.alive else None

    def client(self) -> HostClient:
        if not self.alive:
            self.raise_death()
        return HostClient(self.settings.host, self.port, self.token, on_broken=self.raise_death)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self, cancel: CancelToken | None = None) -> Iterator[Progress]:
        """Start the host and wait until it serves; yields Progress while loading."""
        cancel = cancel or CancelToken()
        path = Path(self.settings.model_path)
        self.model_info = inspect_gguf(path)
        if self.settings.lora_path:
            inspect_adapter(self.settings.lora_path, self.model_info)
        yield Progress(0, None, "s", f"Loading {path.name}…")
        for attempt in range(2):
            yield from self._launch(cancel)
            if self.info or cancel.cancelled:
                return
            if self._process.returncode == TEMPLATE_TIMEOUT_EXIT and attempt == 0:
                self.notice = ("The model's chat template took longer than 2 s to render; "
                               "Ember restarted it with its built-in format.")
                self.settings = replace(self.settings, chat_format="chatml")
                continue
            self.raise_death()

    def start_blocking(self, cancel: CancelToken | None = None) -> RuntimeHost:
        for _ in self.start(cancel):
            pass
        return self

    def _command(self) -> list[str]:
        s = self.settings
        layers = resolve_gpu_layers(s, self.model_info)
        command = [sys.executable, "-m", "engine.runtime.host_main", "--model", str(s.model_path),
                   "--host", s.host, "--port", str(s.port), "--ctx", str(s.context_length),
                   "--gpu-layers", str(layers), "--threads", str(resolve_threads(s.threads))]
        if s.flash_attention:
            command.append("--flash-attn")
        if s.lora_path:
            command += ["--lora", str(s.lora_path)]
        if s.chat_format:
            command += ["--chat-format", s.chat_format]
        if s.keep_running_without_parent:
            command.append("--no-stdin-watch")
        if s.role not in ("chat", "embedding"):
            raise InvalidInput(f"The host role must be 'chat' or 'embedding', not {s.role!r}.")
        if s.role == "embedding":
            command.append("--embedding")
        return command

    def _launch(self, cancel: CancelToken) -> Iterator[Progress]:
        self.info = {}
        env = dict(os.environ, **{TOKEN_ENV: self.token})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
        log_file = self._open_log()
        self._process = subprocess.Popen(
            self._command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=str(_PROJECT_ROOT),
        )
        ready: dict = {}
        threading.Thread(target=self._read_ready, args=(ready,), daemon=True).start()
        threading.Thread(target=self._copy_stderr, args=(log_file,), daemon=True).start()
        started = time.monotonic()
        while not ready:
            if cancel.wait(0.05):
                self.stop()
                return
            if self._process.poll() is not None:
                self._process.wait()
                time.sleep(0.1)  # let the stderr copier catch the last lines
                if ready:
                    break
                return
            elapsed = time.monotonic() - started
            if elapsed > self.settings.start_timeout_s:
                self.stop()
                raise HostStartFailed(f"The model did not load within {self.settings.start_timeout_s:.0f} s.")
            yield Progress(elapsed, None, "s", f"Loading {Path(self.settings.model_path).name}… {elapsed:.1f} s")
        if "error" in ready:
            self._process.wait(timeout=10)
            time.sleep(0.1)
            self._stderr_tail.append(ready["error"])
            return
        self.info = ready
        if ready.get("notice"):
            self.notice = ready["notice"] if not self.notice else f"{self.notice} {ready['notice']}"
        yield Progress(1, 1, "", f"Loaded in {ready.get('load_s', 0):.1f} s")

    def _open_log(self):
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(self.settings.model_path).stem)[:60]
        self.log_path = self.log_dir / f"host-{stem}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        return open(self.log_path, "a", encoding="utf-8", errors="replace")

    def _read_ready(self, ready: dict) -> None:
        line = self._process.stdout.readline()
        try:
            ready.update(json.loads(line) if line else {"error": "the model process exited while loading"})
        except ValueError:
            ready.update({"error": f"unexpected output from the model process: {line[:200]!r}"})

    def _copy_stderr(self, log_file) -> None:
        """Keep the last lines for error messages and write all of them to the host's log file."""
        try:
            for raw in self._process.stderr:
                line = raw.decode("utf-8", "replace")
                self._stderr_tail.append(line.rstrip())
                if log_file:
                    log_file.write(line)
                    log_file.flush()
        finally:
            if log_file:
                log_file.close()

    def raise_death(self) -> None:
        """Raise the typed error that explains why the process is gone (or HostDied)."""
        process = self._process
        if process is not None and process.poll() is None:
            return
        code = process.returncode if process else None
        tail = "\n".join(self._stderr_tail)
        if code == TEMPLATE_TIMEOUT_EXIT:
            raise TemplateError("The model's chat template took longer than 2 s to render and was stopped.",
                                "Load the model again: Ember will use its built-in chat format.",
                                log_path=str(self.log_path) if self.log_path else None)
        for pattern, error_class, message in _CAUSES:
            if pattern.search(tail):
                raise error_class(f"{message} ({_last_meaningful_line(tail)})",
                                  log_path=str(self.log_path) if self.log_path else None)
        error_class = HostStartFailed if not self.info else HostDied
        log_path = str(self.log_path) if self.log_path else None
        if code is not None and code < 0:
            message, hint = _signal_words(-code)
            raise error_class(f"The model process stopped: {message}", hint, log_path=log_path)
        detail = _last_meaningful_line(tail) or f"exit code {code}"
        raise error_class(f"The model process stopped: {detail}", log_path=log_path)

    def stop(self, timeout: float = 5.0) -> None:
        """Close stdin (the host exits by itself), then terminate, then kill."""
        with self._lock:
            process = self._process
            if process is None:
                return
            if process.poll() is None:
                try:
                    process.stdin.close()
                    process.wait(timeout=timeout)
                except (OSError, subprocess.TimeoutExpired):
                    process.terminate()
                    try:
                        process.wait(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self) -> RuntimeHost:
        return self.start_blocking()

    def __exit__(self, *exc) -> None:
        self.stop()


CRASH_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"}


def _signal_words(number: int) -> tuple[str, str | None]:
    """What a death by signal means to the user, and what to do (None: the error's usual hint)."""
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    if name in CRASH_SIGNALS:
        return (f"llama.cpp crashed ({name}).",
                "Load the model again. If every model crashes on its first reply, this llama.cpp build uses "
                "CPU features this machine cannot run: rebuild it as the README says under “If llama.cpp "
                "crashes”.")
    if name == "SIGKILL":
        return ("it was killed (SIGKILL: out of memory, or stopped from outside Ember).",
                "Load the model again; if memory is short, pick a smaller context or a smaller model.")
    return f"it was stopped by {name}.", None


def _last_meaningful_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line and not line.startswith(("Traceback", "File ", "^")):
            return line[:300]
    return ""

