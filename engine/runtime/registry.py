"""The model processes that are running, by role: the chat model, the embedding model, and a chat model
loaded for the local API server alone ("served", chosen on the Server page; without one the server
answers with the Chat page's model).

One registry per app (or CLI run). It holds what every page needs to know about a loaded model: the
host process and the file it runs. Who starts and stops hosts (the app's runtime controller, a CLI
command) puts them here; everyone else only reads. Thread-safe: the indexer of the Documents page
looks up the embedding host from its worker thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

from engine.runtime.supervisor import RuntimeHost

ROLES = ("chat", "embedding", "served")


@dataclass(frozen=True)
class LoadedModel:
    """A running host and the model file it serves. `sha256` is None until the file has been hashed."""

    role: str
    host: RuntimeHost
    path: str
    sha256: str | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def ready(self) -> bool:
        return self.host.alive

    @property
    def context_length(self) -> int:
        return int(self.host.info.get("n_ctx") or self.host.settings.context_length)

    @property
    def quantization(self) -> str | None:
        return self.host.model_info.quantization if self.host.model_info else None

    @property
    def template_hash(self) -> str | None:
        return self.host.info.get("template_hash")


class HostRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, LoadedModel] = {}

    def get(self, role: str) -> LoadedModel | None:
        with self._lock:
            return self._loaded.get(role)

    def ready(self, role: str) -> LoadedModel | None:
        """The model of this role if its process is alive, else None."""
        loaded = self.get(role)
        return loaded if loaded is not None and loaded.ready else None

    def put(self, loaded: LoadedModel) -> LoadedModel | None:
        """Register a started host; returns the one it replaces (the caller stops that one)."""
        if loaded.role not in ROLES:
            raise ValueError(f"unknown host role {loaded.role!r}")
        with self._lock:
            previous, self._loaded[loaded.role] = self._loaded.get(loaded.role), loaded
        return previous

    def take(self, role: str) -> LoadedModel | None:
        """Unregister the host of this role and return it (the caller stops it)."""
        with self._lock:
            return self._loaded.pop(role, None)

    def hashed(self, path: str, sha256: str) -> list[str]:
        """A model file's SHA-256 became known: record it on every role that runs that file."""
        with self._lock:
            roles = [role for role, loaded in self._loaded.items() if loaded.path == path]
            for role in roles:
                self._loaded[role] = replace(self._loaded[role], sha256=sha256)
        return roles

    def stop_all(self) -> None:
        with self._lock:
            loaded, self._loaded = list(self._loaded.values()), {}
        for model in loaded:
            model.host.stop()
