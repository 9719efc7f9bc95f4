"""What every Hub call shares: the endpoint, an HfApi for it, and huggingface_hub's errors made Ember's.

huggingface_hub reads HF_ENDPOINT once, at import; Ember reads it at call time (`current_endpoint`)
and passes it explicitly to every call, so tests and mirrors work without re-importing anything.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from engine.errors import EmberError, HubError, InvalidInput, NetworkError, NotFound

DEFAULT_ENDPOINT = "https://huggingface.co"
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def current_endpoint() -> str:
    """HF_ENDPOINT as set now, else the public Hub's address (from huggingface_hub's constants)."""
    value = os.environ.get("HF_ENDPOINT", "").strip()
    if value:
        return value.rstrip("/")
    from huggingface_hub import constants

    return getattr(constants, "_HF_DEFAULT_ENDPOINT", DEFAULT_ENDPOINT)


def hf_api(endpoint: str, token: str | bool | None = None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token)


def check_reachable(endpoint: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing answers at the endpoint's address.

    huggingface_hub's list calls retry a refused connection for about 23 s (backoff 1+2+4+8+8);
    one TCP connect tells "no network" apart at once. Skipped behind a proxy, where only the proxy
    knows the way.
    """
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except OSError as exc:
        raise unreachable(endpoint, exc) from exc


def unreachable(endpoint: str, exc: BaseException | None = None) -> NetworkError:
    detail = f" ({type(exc).__name__}: {exc})" if exc else ""
    return NetworkError(f"Could not reach the Hub at {endpoint}: check your network.{detail}",
                        "Check your internet connection (or HF_ENDPOINT), then try again.")


@contextmanager
def hub_errors(endpoint: str, repo_id: str | None = None, filename: str | None = None,
               revision: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub and HTTP errors into typed Ember errors that say what to do."""
    import httpx2
    from huggingface_hub import errors as hf

    try:
        yield
    except EmberError:
        raise
    except hf.GatedRepoError as exc:
        raise HubError(f"{repo_id} is gated: its authors ask you to accept their terms first.",
                       "Accept the terms on the model's Hub page, then log in (hf auth login).") from exc
    except hf.RepositoryNotFoundError as exc:
        raise NotFound(f"No model named {repo_id} on the Hub.",
                       "Check the name (owner/name); a private model needs you to log in (hf auth login).") from exc
    except hf.RevisionNotFoundError as exc:
        raise NotFound(f"{repo_id} has no revision {revision!r}.", "Use 'main' or an existing branch, tag or commit.") \
            from exc
    except hf.RemoteEntryNotFoundError as exc:
        raise NotFound(f"{repo_id} has no file {filename!r}.",
                       f"List its files with: ember download {repo_id}") from exc
    except hf.OfflineModeIsEnabled as exc:
        raise NetworkError("huggingface_hub is in offline mode (HF_HUB_OFFLINE is set).",
                           "Unset HF_HUB_OFFLINE to reach the Hub.") from exc
    except hf.HFValidationError as exc:
        raise InvalidInput(f"{repo_id!r} is not a valid model name: {exc}", "Use the form owner/name.") from exc
    except hf.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise _status_error(status, endpoint, repo_id, filename) from exc
    except (httpx2.TransportError, ConnectionError, TimeoutError) as exc:
        raise unreachable(endpoint, exc) from exc


def _status_error(status, endpoint: str, repo_id: str | None, filename: str | None) -> EmberError:
    """An HTTP status huggingface_hub did not name (no X-Error-Code), in words that say what to do."""
    what = f"{repo_id}/{filename}" if repo_id and filename else repo_id or endpoint
    if status in (401, 403):
        return HubError(f"The Hub refused access to {what} (HTTP {status}).",
                        "The model may be private or gated: log in (hf auth login) with an account that may use it.")
    if status == 404:
        return NotFound(f"{repo_id} has no file {filename!r}." if repo_id and filename else f"{what} was not found "
                        "on the Hub.", f"List its files with: ember download {repo_id}" if repo_id else None)
    if status == 429:
        return HubError(f"The Hub says too many requests (HTTP 429) for {what}.",
                        "Wait a few minutes, then try again (a logged-in user gets more).")
    return HubError(f"The Hub at {endpoint} answered with an error (HTTP {status}).",
                    "The Hub may be busy; try again in a moment.")
