"""RuntimeHost: one runtime host process (host_main.py) for one GGUF, on the generic ChildProcess.

ChildProcess (child.py) spawns, reads, logs and stops it; this module keeps what is llama-specific:
the command line, the bearer token in the environment, the ready event's info (port, template...),
llama.cpp's stderr turned into typed errors, and the template retry. A bad file, an out-of-memory
load or a crash ends only that process. A chat template that hangs makes the host exit with
TEMPLATE_TIMEOUT_EXIT: the supervisor starts it again with a built-in format and keeps the notice.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from engine.child_command import child_command
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
from engine.gguf.splits import require_every_part
from engine.jobs import CancelToken, Progress
from engine.runtime.child import ChildProcess, Death, last_meaningful_line
from engine.runtime.client import HostClient
from engine.runtime.fit import choose_gpu_layers
from engine.runtime.hardware import HardwareInfo, default_threads, probe_hardware
from engine.runtime.protocol import TEMPLATE_TIMEOUT_EXIT, TOKEN_ENV

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
    flash_attention: bool = True  # where layers run on a GPU (flash_attention_used: never on the CPU)
    lora_path: str | None = None
    lora_scale: float = 1.0  # the adapter's strength; change it on a running host with HostClient.set_adapter
    chat_format: str | None = None  # None: the GGUF template; or "none" or a built-in format name
    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    start_timeout_s: float = 300.0
    role: str = "chat"  # "chat", or "embedding": an embedding model serving /ember/embed (HostClient.embed)


def resolve_threads(threads: int | None) -> int:
    """The user's thread count, or the default (`hardware.default_threads`: cores - 1)."""
    if threads is not None:
        if threads < 1:
            raise InvalidInput("Threads must be at least 1.")
        return threads
    return default_threads()


def resolve_gpu_layers(settings: HostSettings, model_info,
                       hardware: Callable[[], HardwareInfo] = probe_hardware) -> int:
    if settings.gpu_layers != "auto":
        try:
            layers = int(settings.gpu_layers)
        except ValueError as exc:
            raise InvalidInput(f"GPU layers must be a number or 'auto', not {settings.gpu_layers!r}.") from exc
        return max(-1, layers)
    return choose_gpu_layers(model_info, hardware(), settings.context_length)


def flash_attention_used(wanted: bool, gpu_layers: int,
                         hardware: Callable[[], HardwareInfo] = probe_hardware) -> bool:
    """Flash attention only where layers run on a GPU (some offloaded, and a GPU this llama.cpp build
    can use). llama.cpp's CPU kernel is a little faster in the first hundred tokens of a context and
    then falls far behind the plain one: 13 against 38 tokens/s at 2048 tokens of context on one
    thread here (benchmarks/flash_attention.py)."""
    return wanted and gpu_layers != 0 and hardware().backend != "CPU"


def adapter_state(path: str | Path | None, scale: float) -> tuple[str, float] | None:
    """An adapter choice in one form: None when nothing changes the base model (no path, or strength 0)."""
    if not path or float(scale) == 0.0:
        return None
    return str(Path(path)), float(scale)


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
        self._process: ChildProcess | None = None
        self._error_line: str | None = None  # what the host's error event said, if it sent one
        self._adapter = adapter_state(settings.lora_path, settings.lora_scale)  # what the host has on now

    # --- state --------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.alive

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
        return self._process.memory_used() if self._process else None

    def client(self) -> HostClient:
        if not self.alive:
            self.raise_death()
        return HostClient(self.settings.host, self.port, self.token, on_broken=self.raise_death,
                          stream_port=self.info.get("stream_port"))

    @property
    def adapter(self) -> tuple[str, float] | None:
        """(path, scale) of the LoRA adapter on the model now; None: the base model alone."""
        return self._adapter

    def use_adapter(self, path: str | Path | None, scale: float = 1.0, cancel: CancelToken | None = None) -> bool:
        """Put this adapter on the model at `scale` (None or 0: the base alone), in place, without a reload.

        Nothing is sent when it is on already: a change empties the host's KV cache, so a chat that keeps
        its adapter keeps its cached prompt. Returns whether the adapter changed."""
        wanted = adapter_state(path, scale)
        if wanted is not None and not Path(wanted[0]).is_file():  # deleted since: say so, even if still in memory
            raise InvalidInput(f"The adapter file {wanted[0]} is not there any more.")
        if wanted == self._adapter:
            return False
        self.client().set_adapter(*(wanted or (None, 0.0)), cancel=cancel)
        self._adapter = wanted
        return True

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self, cancel: CancelToken | None = None) -> Iterator[Progress]:
        """Start the host and wait until it serves; yields Progress while loading."""
        cancel = cancel or CancelToken()
        path = Path(self.settings.model_path)
        self.model_info = inspect_gguf(path)
        require_every_part(path)
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
        hardware = functools.cache(probe_hardware)  # probed once, if at all, for both choices
        layers = resolve_gpu_layers(s, self.model_info, hardware)
        command = child_command("engine.runtime.host_main", "--model", str(s.model_path),
                                "--host", s.host, "--port", str(s.port), "--ctx", str(s.context_length),
                                "--gpu-layers", str(layers), "--threads", str(resolve_threads(s.threads)))
        if flash_attention_used(s.flash_attention, layers, hardware):
            command.append("--flash-attn")
        if s.lora_path:
            command += ["--lora", str(s.lora_path), "--lora-scale", repr(float(s.lora_scale))]
        if s.chat_format:
            command += ["--chat-format", s.chat_format]
        if s.role not in ("chat", "embedding"):
            raise InvalidInput(f"The host role must be 'chat' or 'embedding', not {s.role!r}.")
        if s.role == "embedding":
            command.append("--embedding")
        return command

    def _launch(self, cancel: CancelToken) -> Iterator[Progress]:
        """Run the host once and wait for its ready event; self.info stays {} when it did not come."""
        self.info = {}
        self._error_line = None
        name = Path(self.settings.model_path).name
        self._process = ChildProcess(self._command(), label=f"host-{Path(self.settings.model_path).stem}",
                                     log_dir=self.log_dir, env={TOKEN_ENV: self.token}).start()
        self.log_path = self._process.log_path
        try:
            event = yield from self._process.wait_for(("ready", "error"), timeout=self.settings.start_timeout_s,
                                                      cancel=cancel, message=f"Loading {name}…")
        except TimeoutError:
            raise HostStartFailed(f"The model did not load within {self.settings.start_timeout_s:.0f} s.") from None
        if event is None:  # cancelled (the child was stopped) or it exited while loading
            if not cancel.cancelled and self._process.wait(timeout=10) is None:
                self._process.stop()  # it closed stdout but lingers: end it, then say why
            return
        if event["type"] == "error":
            self._error_line = str(event.get("error", ""))
            self._process.wait(timeout=10)
            return
        self.info = {key: value for key, value in event.items() if key != "type"}
        if self.info.get("notice"):
            self.notice = self.info["notice"] if not self.notice else f"{self.notice} {self.info['notice']}"
        yield Progress(1, 1, "", f"Loaded in {self.info.get('load_s', 0):.1f} s")

    def raise_death(self) -> None:
        """Raise the typed error that explains why the process is gone (or HostDied)."""
        process = self._process
        if process is not None and process.alive:
            return
        death = process.death() if process else None
        tail = "\n".join(filter(None, [process.stderr_tail() if process else "", self._error_line]))
        log_path = str(self.log_path) if self.log_path else None
        if death is not None and death.code == TEMPLATE_TIMEOUT_EXIT:
            raise TemplateError("The model's chat template took longer than 2 s to render and was stopped.",
                                "Load the model again: Ember will use its built-in chat format.",
                                log_path=log_path)
        for pattern, error_class, message in _CAUSES:
            if pattern.search(tail):
                raise error_class(f"{message} ({last_meaningful_line(tail)})", log_path=log_path)
        error_class = HostStartFailed if not self.info else HostDied
        if death is not None and death.signal:
            message, hint = _signal_words(death)
            raise error_class(f"The model process stopped: {message}", hint, log_path=log_path)
        detail = last_meaningful_line(tail) or f"exit code {death.code if death else None}"
        raise error_class(f"The model process stopped: {detail}", log_path=log_path)

    def stop(self, timeout: float = 5.0) -> None:
        """Close stdin (the host exits by itself), then terminate, then kill."""
        if self._process is not None:
            self._process.stop(timeout)

    def __enter__(self) -> RuntimeHost:
        return self.start_blocking()

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_words(death: Death) -> tuple[str, str | None]:
    """What a death by signal means to the user, and what to do (None: the error's usual hint)."""
    if death.crashed:
        return (f"llama.cpp crashed ({death.signal}).",
                "Load the model again. If every model crashes on its first reply, this llama.cpp build uses "
                "CPU features this machine cannot run: rebuild it as the README says under “If llama.cpp "
                "crashes”.")
    if death.signal == "SIGKILL" and not death.stopped:
        return (f"{death.reason}.",
                "Load the model again; if memory is short, pick a smaller context or a smaller model.")
    return f"{death.reason}.", None
