"""HostClient: Ember's side of the runtime host (its routes, and its chat stream's own port), on the
standard library's http.client.

`stream_chat` yields TokenEvents as the host's NDJSON batches arrive. Cancelling shuts the socket
down from the cancelling thread, so the generator ends at once (not at the next token) with
`stop_reason="cancelled"`, and the host stops generating when it sees the connection close.
`embed` (an embedding host) cancels the same way: it returns None at once, and the host stops
before its next batch.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from engine.errors import Cancelled, EmberError, GenerationFailed, HostDied, InvalidInput
from engine.jobs import CancelToken, GenerationStats, TokenEvent
from engine.runtime.sampling import Sampling
from engine.sockets import shut_down

if TYPE_CHECKING:
    import numpy as np

READ_TIMEOUT_S = 600.0  # last resort against a host that hangs without dying


class HostClient:
    def __init__(self, host: str, port: int, token: str, *, on_broken: Callable[[], None] | None = None,
                 stream_port: int | None = None) -> None:
        self.host = host
        self.port = port
        self.stream_port = stream_port  # the chat stream's own port (stream_server.py); a chat host has one
        self.token = token
        # Called when the connection breaks unexpectedly: the supervisor raises the real cause (HostDied...).
        self.on_broken = on_broken

    def _connect(self, timeout: float = READ_TIMEOUT_S, port: int | None = None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, port or self.port, timeout=timeout)

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def _json(self, method: str, path: str, body: dict | None = None, timeout: float = 30.0,
              cancel: CancelToken | None = None, *, refused: str = "The model process refused the request.",
              missing: EmberError | None = None) -> dict:
        """One request and its JSON answer; `cancel` breaks it off at once (raising Cancelled).

        A 400 is an InvalidInput with the host's reason (else `refused`); a 404 is `missing` when given."""
        conn = self._connect(timeout)
        unregister = lambda: None  # noqa: E731
        try:
            conn.connect()
            if cancel is not None:
                unregister = cancel.on_cancel(lambda: shut_down(conn.sock))
            conn.request(method, path, json.dumps(body) if body is not None else None, self._headers())
            response = conn.getresponse()
            data = json.loads(response.read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("Stopped.") from exc
            self._broken()
            raise HostDied(f"The model process did not answer: {exc}") from exc
        finally:
            unregister()
            conn.close()
        if cancel is not None and cancel.cancelled:
            raise Cancelled("Stopped.")
        if response.status == 400:
            raise InvalidInput(data.get("error", refused))
        if response.status == 404 and missing is not None:
            raise missing
        if response.status != 200:
            raise GenerationFailed(f"The model process answered {response.status}: {data}")
        return data

    def info(self) -> dict:
        return self._json("GET", "/ember/info")

    def set_adapter(self, path: str | None, scale: float = 1.0, cancel: CancelToken | None = None) -> dict:
        """Put a LoRA adapter (GGUF) on the running model at `scale`, or remove it (None or scale 0),
        without reloading the model. Returns {"lora", "lora_scale"}; InvalidInput when it is refused."""
        return self._json("POST", "/ember/adapter", {"path": str(path) if path else None, "scale": float(scale)},
                          timeout=120.0, cancel=cancel, refused="The model process refused the adapter.",
                          missing=InvalidInput("This model process cannot change adapters.",
                                               "Load the model again (a chat model) to use adapters."))

    def count_tokens(self, messages: list[dict], cancel: CancelToken | None = None) -> int:
        """Prompt tokens of these messages as the host's template renders them (for the context budget)."""
        return int(self._json("POST", "/ember/count", {"messages": messages}, cancel=cancel)["tokens"])

    def count_text_tokens(self, text: str, cancel: CancelToken | None = None) -> int:
        """Tokens of a plain text as the model's tokenizer makes them, special tokens included, through
        llama-cpp-python's own `/extras/tokenize/count` (the chunker's budgets, on an embedding host)."""
        return int(self._json("POST", "/extras/tokenize/count", {"input": text}, cancel=cancel)["count"])

    def embed(self, texts: list[str], cancel: CancelToken | None = None, *, normalize: bool = True) -> np.ndarray:
        """One vector per text (float32, len(texts) × n_embd; unit length unless normalize=False).

        Cancelled when cancelled (as count_tokens). A text longer than the model's context is an InvalidInput: split it first."""
        answer = self._json("POST", "/ember/embed", {"texts": texts, "normalize": normalize}, timeout=READ_TIMEOUT_S,
                            cancel=cancel, refused="The model process refused the texts.",
                            missing=InvalidInput("This model process was started for chat, not for embeddings.",
                                                 "Load an embedding model with the embedding role."))
        import numpy as np  # here, not at the top: the window paints before numpy loads

        vectors = np.asarray(answer["vectors"], dtype=np.float32)
        if vectors.shape[0] != len(texts):
            raise GenerationFailed(f"The model process returned {vectors.shape[0]} vectors for {len(texts)} texts.")
        return vectors

    def _broken(self) -> None:
        if self.on_broken:
            self.on_broken()

    def stream_chat(
        self, messages: list[dict], sampling: Sampling | None = None, cancel: CancelToken | None = None
    ) -> Iterator[TokenEvent]:
        """Stream one reply. The last event carries the stats; cancel ends it with stop_reason 'cancelled'."""
        cancel = cancel or CancelToken()
        sampling = sampling or Sampling()
        body = json.dumps({"messages": messages, "sampling": sampling.to_dict()})
        started = time.perf_counter()
        first_at: float | None = None
        tokens = 0
        start: dict = {}
        if self.stream_port is None:
            raise InvalidInput("This model process was started for embeddings, not for chat.",
                               "Load a chat model to chat.")
        conn = self._connect(port=self.stream_port)
        response: http.client.HTTPResponse | None = None
        unregister = lambda: None  # noqa: E731
        try:
            conn.request("POST", "/ember/chat", body, self._headers())
            # Kept here: the reply ends with the connection (HTTP/1.0), so http.client hands the socket
            # to the response and clears conn.sock.
            sock = conn.sock
            unregister = cancel.on_cancel(lambda: shut_down(sock))
            response = conn.getresponse()
            if response.status != 200:
                raise GenerationFailed(f"The model process answered {response.status}: {response.read()[:300]!r}")
            while True:
                line = response.readline()
                if not line:
                    break
                event = json.loads(line)
                text = event.get("t")
                if text is not None:
                    if first_at is None:
                        first_at = time.perf_counter()
                    tokens = event.get("n", tokens)
                    yield TokenEvent(text=text)
                elif "start" in event:
                    start = event["start"]
                elif "done" in event:
                    done = event["done"]
                    done["ttft_s"] = (first_at - started) if first_at else None
                    yield TokenEvent(stats=GenerationStats.from_dict(done))
                    return
                elif "error" in event:
                    yield TokenEvent(stats=GenerationStats(
                        "error", prompt_tokens=start.get("prompt_tokens", 0), error=event["error"]))
                    return
            if not cancel.cancelled:
                raise OSError("the connection closed before the reply ended")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not cancel.cancelled:
                self._broken()
                raise HostDied(f"The model process stopped during the reply: {exc}") from exc
        finally:
            unregister()
            if response is not None:
                response.close()  # it holds the socket now
            conn.close()
        elapsed = time.perf_counter() - started
        rate = (tokens - 1) / (elapsed - (first_at - started)) if first_at and tokens > 1 else None
        yield TokenEvent(stats=GenerationStats(
            "cancelled", prompt_tokens=start.get("prompt_tokens", 0), cached_tokens=start.get("cached_tokens", 0),
            completion_tokens=tokens, ttft_s=(first_at - started) if first_at else None,
            tokens_per_s=rate, total_s=elapsed))

