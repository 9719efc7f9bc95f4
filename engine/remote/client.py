"""A chat model on a remote OpenAI-compatible server, used exactly like a local model process: the
same `stream_chat` (TokenEvents, then the stats), `count_tokens` and `info` as HostClient, so chats,
document answers and the context budget work unchanged.

Token counts come from the server's usage figures when it sends them; before the first reply, and
on servers that send none, they are estimated from the characters, at a rate learned from the
figures seen so far, and the stats say so (`notice`).
"""

from __future__ import annotations

import http.client
import json
import math
import time
from collections.abc import Iterator

from engine.jobs import CancelToken, GenerationStats, TokenEvent
from engine.remote.endpoints import Endpoint, RemoteFailed, refused, unreachable
from engine.runtime.sampling import Sampling
from engine.sockets import shut_down

READ_TIMEOUT_S = 300.0
ESTIMATE_NOTICE = "Token counts for this server are estimates (it sent no usage figures)."


class TokenRate:
    """Characters per token, learned from the usage figures a server returns (4 until then)."""

    def __init__(self) -> None:
        self.chars_per_token = 4.0
        self.measured = False

    def learn(self, chars: int, tokens: int) -> None:
        if chars > 0 and tokens > 0:
            self.chars_per_token = chars / tokens
            self.measured = True

    def estimate(self, chars: int) -> int:
        return math.ceil(chars / self.chars_per_token)


class RemoteClient:
    def __init__(self, endpoint: Endpoint, model: str, context_length: int, rate: TokenRate | None = None) -> None:
        self.endpoint = endpoint
        self.model = model
        self.context_length = context_length
        self.rate = rate or TokenRate()

    def info(self) -> dict:
        return {"model": self.model, "n_ctx": self.context_length, "template": "remote", "role": "chat",
                "remote": self.endpoint.name, "token_counts": "measured" if self.rate.measured else "estimated"}

    def count_tokens(self, messages: list[dict], cancel: CancelToken | None = None) -> int:
        """An estimate (a remote server renders its own template): the text's characters at the learned
        rate, plus a few tokens a message for the template's markers."""
        return sum(self.rate.estimate(len(str(m.get("content") or ""))) + 4 for m in messages)

    def count_text_tokens(self, text: str, cancel: CancelToken | None = None) -> int:
        return self.rate.estimate(len(text))

    def set_adapter(self, path, scale: float = 1.0, cancel: CancelToken | None = None) -> dict:
        from engine.errors import InvalidInput

        raise InvalidInput(f"{self.endpoint.name} is a remote server: Ember cannot put an adapter on its model.",
                           "Use adapters with a model loaded on this computer.")

    def stream_chat(self, messages: list[dict], sampling: Sampling | None = None,
                    cancel: CancelToken | None = None) -> Iterator[TokenEvent]:
        """Stream one reply over server-sent events. A cut or an error after text arrived raises
        RemoteFailed (the conversation keeps the partial reply); cancel ends it as 'cancelled'."""
        cancel = cancel or CancelToken()
        sampling = sampling or Sampling()
        body = {"model": self.model, "messages": messages, "stream": True, "stream_options": {"include_usage": True},
                "max_tokens": sampling.max_tokens, "temperature": sampling.temperature, "top_p": sampling.top_p}
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        started = time.perf_counter()
        first_at: float | None = None
        pieces, finish, usage = 0, None, None
        prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
        conn = self.endpoint.connection(READ_TIMEOUT_S)
        unregister = lambda: None  # noqa: E731
        try:
            conn.request("POST", self.endpoint.base_path + "/chat/completions", json.dumps(body).encode(),
                         {**self.endpoint.headers(), "Accept": "text/event-stream"})
            unregister = cancel.on_cancel(lambda: shut_down(conn.sock))
            response = conn.getresponse()
            if response.status != 200:
                raise refused(self.endpoint, response.status, response.read())
            while True:
                line = response.readline()
                if not line:
                    if cancel.cancelled:
                        break
                    raise RemoteFailed(f"{self.endpoint.name} stopped sending the reply before it ended.",
                                       "The reply so far is kept; try again or regenerate it.")
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        first_at = first_at or time.perf_counter()
                        pieces += 1
                        yield TokenEvent(text=text)
                    finish = choice.get("finish_reason") or finish
        except RemoteFailed:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not cancel.cancelled:
                if first_at is None:
                    raise unreachable(self.endpoint, exc) from exc
                raise RemoteFailed(f"{self.endpoint.name} was cut off during the reply: {exc}.",
                                   "The reply so far is kept; try again or regenerate it.") from exc
        finally:
            unregister()
            conn.close()
        elapsed = time.perf_counter() - started
        completion = int(usage.get("completion_tokens") or pieces) if usage else pieces
        prompt = int(usage["prompt_tokens"]) if usage and usage.get("prompt_tokens") else None
        if prompt:
            self.rate.learn(prompt_chars, prompt)
        decode_s = elapsed - (first_at - started) if first_at else 0.0
        reason = "cancelled" if cancel.cancelled else ("length" if finish == "length" else "stop")
        yield TokenEvent(stats=GenerationStats(
            reason, prompt_tokens=prompt if prompt is not None else self.count_tokens(messages),
            completion_tokens=completion, ttft_s=(first_at - started) if first_at else None,
            tokens_per_s=(completion - 1) / decode_s if completion > 1 and decode_s > 0 else None,
            total_s=elapsed, notice=None if usage else ESTIMATE_NOTICE, seed=sampling.seed))
