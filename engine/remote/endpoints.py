"""Remote backends: OpenAI-compatible servers the user adds (a llama.cpp server, vLLM, Ollama, another
Ember), kept in settings.json, and the models each one offers.

    endpoint = Endpoint("box", "http://192.168.1.20:8080/v1", api_key="...")
    names = list_models(endpoint)        # a clear InvalidInput/RemoteFailed when it cannot be reached
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from engine.config import load_settings, update_settings
from engine.errors import EmberError, InvalidInput
from engine.paths import EmberPaths

SETTINGS_KEY = "remote_endpoints"
CONNECT_TIMEOUT_S = 10.0


class RemoteFailed(EmberError):
    """A remote server could not be used: unreachable, refused the key, busy, or cut off."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str  # the API's base, ending in /v1 (added when the user gave a bare address)
    api_key: str = field(default="", repr=False)

    def checked(self) -> Endpoint:
        name = self.name.strip()
        if not name or "/" in name:
            raise InvalidInput("A remote server needs a short name without '/'.", "For example: workstation.")
        url = self.url.strip().rstrip("/")
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"{self.url!r} is not a server address.", "Give one like http://192.168.1.20:8080/v1.")
        path = parts.path.rstrip("/")
        if not path.endswith("/v1"):
            path += "/v1"
        return Endpoint(name, f"{parts.scheme}://{parts.netloc}{path}", self.api_key.strip())

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def base_path(self) -> str:
        return urlsplit(self.url).path.rstrip("/")

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if urlsplit(self.url).scheme == "https" else http.client.HTTPConnection
        return kind(self.host, self.port, timeout=timeout)

    def headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


# --- what the user added ---------------------------------------------------------------------------
def load_endpoints(paths: EmberPaths) -> list[Endpoint]:
    endpoints = []
    for item in load_settings(paths.settings).get(SETTINGS_KEY, [], kind=list):
        try:
            endpoints.append(Endpoint(str(item["name"]), str(item["url"]), str(item.get("api_key", ""))).checked())
        except (KeyError, TypeError, InvalidInput):
            continue  # a damaged entry is skipped, not fatal
    return endpoints


def save_endpoint(paths: EmberPaths, endpoint: Endpoint) -> Endpoint:
    """Add or replace (by name) a remote server."""
    endpoint = endpoint.checked()

    def change(settings) -> None:
        current = [e for e in settings.get(SETTINGS_KEY, [], kind=list) if isinstance(e, dict) and e.get("name") != endpoint.name]
        settings.set(SETTINGS_KEY, current + [asdict(endpoint)])

    update_settings(paths.settings, change)
    return endpoint


def remove_endpoint(paths: EmberPaths, name: str) -> None:
    def change(settings) -> None:
        settings.set(SETTINGS_KEY, [e for e in settings.get(SETTINGS_KEY, [], kind=list)
                                    if isinstance(e, dict) and e.get("name") != name])

    update_settings(paths.settings, change)


# --- asking the server ---------------------------------------------------------------------------------
def list_models(endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT_S) -> list[str]:
    """The model names the server offers (GET /v1/models)."""
    status, data = request_json(endpoint, "GET", "/models", None, timeout)
    models = data.get("data") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise RemoteFailed(f"{endpoint.name} answered /models with something that is not a model list.",
                           "Check that the address is an OpenAI-compatible API (it usually ends in /v1).")
    return [str(m["id"]) for m in models if isinstance(m, dict) and m.get("id")]


def request_json(endpoint: Endpoint, method: str, path: str, body: dict | None,
                 timeout: float) -> tuple[int, dict]:
    conn = endpoint.connection(timeout)
    try:
        conn.request(method, endpoint.base_path + path, json.dumps(body).encode() if body is not None else None,
                     endpoint.headers())
        response = conn.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise unreachable(endpoint, exc) from exc
    finally:
        conn.close()
    if response.status != 200:
        raise refused(endpoint, response.status, raw)
    try:
        return response.status, json.loads(raw)
    except ValueError as exc:
        raise RemoteFailed(f"{endpoint.name} answered with something that is not JSON.",
                           "Check that the address is an OpenAI-compatible API.") from exc


def unreachable(endpoint: Endpoint, exc: BaseException) -> RemoteFailed:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return RemoteFailed(f"{endpoint.name} ({endpoint.url}) did not answer in time.",
                            "Check that the server runs and is not overloaded, then try again.")
    return RemoteFailed(f"{endpoint.name} ({endpoint.url}) cannot be reached: {exc}.",
                        "Check the address and that the server runs; the chat is kept.")


def refused(endpoint: Endpoint, status: int, raw: bytes) -> RemoteFailed:
    said = _error_text(raw)
    if status == 401 or status == 403:
        return RemoteFailed(f"{endpoint.name} refused the API key ({status}).",
                            "Check the key in Settings, Remote servers.")
    if status == 404:
        return RemoteFailed(f"{endpoint.name} does not know that ({status}): {said}",
                            "Pick another of its models, or check the address.")
    if status == 429:
        return RemoteFailed(f"{endpoint.name} is busy ({status}): {said}", "Wait a moment and try again.")
    return RemoteFailed(f"{endpoint.name} answered {status}: {said}", "Try again; the chat is kept.")


def _error_text(raw: bytes) -> str:
    try:
        data = json.loads(raw)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or error)[:300]
        if error:
            return str(error)[:300]
    except ValueError:
        pass
    return raw[:300].decode("utf-8", "replace") or "no details"
