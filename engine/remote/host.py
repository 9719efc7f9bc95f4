"""A remote model where Ember expects a model process: the registry holds it as the chat model, and
the chat, the budget and the status bar use it without knowing it runs elsewhere.

    host = RemoteHost(endpoint, "llama3.1:8b", context_length=8192)
    host.start_blocking()        # checks the server offers that model (clear errors when it cannot)
    registry.put(LoadedModel("chat", host, host.path))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidInput
from engine.jobs import CancelToken, Progress
from engine.remote.client import RemoteClient, TokenRate
from engine.remote.endpoints import Endpoint, RemoteFailed, list_models

PATH_PREFIX = "remote:"


@dataclass(frozen=True)
class RemoteSettings:
    """What the app reads of a host's settings (as HostSettings)."""

    model_path: str
    context_length: int
    gpu_layers: int = 0
    threads: int | None = None
    flash_attention: bool = False
    role: str = "chat"


@dataclass(frozen=True)
class RemoteModel:
    """A model a remote server offers, as the model picker lists it beside the library's files."""

    endpoint: Endpoint
    model: str
    source: str = "remote"
    info = None  # no GGUF inspection: the server knows its model
    sha256 = None

    @property
    def path(self) -> str:
        return remote_path(self.endpoint, self.model)

    @property
    def name(self) -> str:
        return f"{self.model} on {self.endpoint.name}"


def find_models(endpoints: list[Endpoint]) -> tuple[list[RemoteModel], list[str]]:
    """Every model the user's servers offer, and a line per server that could not be asked."""
    models, problems = [], []
    for endpoint in endpoints:
        try:
            models += [RemoteModel(endpoint, name) for name in list_models(endpoint)]
        except RemoteFailed as error:
            problems.append(error.message)
    return models, problems


def remote_path(endpoint: Endpoint, model: str) -> str:
    """How a remote model is named where a local one has its file path (never opened as a file)."""
    return f"{PATH_PREFIX}{endpoint.name}/{model}"


def is_remote(path: str | Path | None) -> bool:
    return str(path or "").startswith(PATH_PREFIX)


class RemoteHost:
    def __init__(self, endpoint: Endpoint, model: str, context_length: int = 8192) -> None:
        self.endpoint = endpoint.checked()
        self.model = model
        self.path = remote_path(self.endpoint, model)
        self.settings = RemoteSettings(self.path, context_length)
        self.rate = TokenRate()
        self.model_info = None  # no GGUF here: quantization and the like are the server's business
        self.notice: str | None = None
        self.token = ""
        self.adapter = None
        self._alive = False
        self.info: dict = {}

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def pid(self) -> None:
        return None

    @property
    def template(self) -> str:
        return "remote"

    def memory_used(self) -> None:
        return None  # on another machine

    def start(self, cancel: CancelToken | None = None) -> Iterator[Progress]:
        yield Progress(0, None, "", f"Asking {self.endpoint.name} for {self.model}…")
        offered = list_models(self.endpoint)
        if self.model not in offered:
            raise RemoteFailed(f"{self.endpoint.name} does not offer {self.model!r}.",
                               f"It offers: {', '.join(offered[:12]) or 'nothing'}.")
        self._alive = True
        self.info = self.client().info() | {"gpu_layers": 0, "threads": "remote"}

    def start_blocking(self) -> None:
        for _ in self.start():
            pass

    def client(self) -> RemoteClient:
        return RemoteClient(self.endpoint, self.model, self.settings.context_length, self.rate)

    def use_adapter(self, path, scale: float = 1.0, cancel: CancelToken | None = None) -> bool:
        if path and float(scale) != 0.0:
            raise InvalidInput(f"{self.endpoint.name} is a remote server: Ember cannot put an adapter on its model.",
                               "Use adapters with a model loaded on this computer.")
        return False

    def stop(self) -> None:
        self._alive = False

    def raise_death(self) -> None:
        raise RemoteFailed(f"{self.endpoint.name} is no longer in use.", "Pick the model again.")
