"""What the supervisor and the host process agree on. Light: importing it loads no llama.cpp."""

import hmac

TOKEN_ENV = "EMBER_HOST_TOKEN"  # the per-launch bearer token travels in the environment, never in argv
RENDER_DEADLINE_S = 2.0  # a chat template render longer than this ends the host
TEMPLATE_TIMEOUT_EXIT = 3  # the host's exit code when that happens


def bearer_matches(header: str | bytes, token: str) -> bool:
    """Whether an Authorization header is `Bearer <token>`. Compared in constant time, so the time a
    refusal takes says nothing about how much of a guessed token was right."""
    given = header.encode() if isinstance(header, str) else header
    return hmac.compare_digest(given, f"Bearer {token}".encode())
