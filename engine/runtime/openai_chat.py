"""The host's OpenAI-compatible `/v1/chat/completions` in Ember's own generation loop.

Other programs get the very loop Ember's chat uses (generation.run_generation: llama.cpp's sampler
chain, one-token decodes, text handed on in batches), so they get the same speed. This module only
translates: an OpenAI request into the loop's body (`translate`), and the loop's events into OpenAI
chunks and replies (`chunk`, `completion`). A request that asks for what the loop does not do
(logprobs, tools, a grammar or JSON reply, several choices, logit bias, mirostat, pictures) is left to
llama-cpp-python's own route: `translate` answers None for it.

Fields not given take Ember's sampling defaults (engine/runtime/sampling.Sampling); without
`max_tokens` the reply may run to the end of the context, as OpenAI's API has it.
"""

from __future__ import annotations

import secrets
import time

from engine.errors import InvalidInput
from engine.runtime.sampling import Sampling

FINGERPRINT = "ember-native"  # system_fingerprint of replies made by Ember's loop (llama-cpp-python sets none)
ROLES = ("system", "user", "assistant")
# Asked for with a value other than these, a field needs llama-cpp-python's own route.
LEFT_TO_LLAMA_CPP_PYTHON = {
    "logprobs": (None, False), "top_logprobs": (None, 0), "tools": (None, []), "tool_choice": (None, "none"),
    "functions": (None, []), "function_call": (None, "none"), "grammar": (None, ""), "logit_bias": (None, {}),
    "mirostat_mode": (None, 0), "n": (None, 1), "min_tokens": (None, 0), "logit_bias_type": (None,),
}
SAMPLING_FIELDS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
                   "repeat_penalty": "repeat_penalty", "seed": "seed"}
FINISH = {"stop": "stop", "length": "length"}


def translate(request: dict, n_ctx: int) -> dict | None:
    """The loop's body for this request, or None when llama-cpp-python's route must answer it.

    Raises InvalidInput for a request the loop could serve but whose values are wrong."""
    if any(request.get(key) not in plain for key, plain in LEFT_TO_LLAMA_CPP_PYTHON.items()):
        return None
    response_format = request.get("response_format")
    if response_format not in (None, {"type": "text"}):
        return None
    messages = plain_messages(request.get("messages"))
    if messages is None:
        return None
    sampling = {name: request[key] for key, name in SAMPLING_FIELDS.items() if request.get(key) is not None}
    stop = request.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidInput("stop must be a string or a list of strings.")
        sampling["stop"] = stops
    limit = request.get("max_completion_tokens", request.get("max_tokens"))
    sampling["max_tokens"] = n_ctx if limit is None else limit
    penalties = {key: request[key] for key in ("frequency_penalty", "presence_penalty")
                 if request.get(key) is not None}
    for key, value in penalties.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -2.0 <= value <= 2.0:
            raise InvalidInput(f"{key} must be a number from -2 to 2.")
    try:
        checked = Sampling.from_dict(sampling)
    except TypeError as exc:
        raise InvalidInput(f"A sampling field has the wrong type: {exc}.") from exc
    return {"messages": messages, "sampling": checked.to_dict(), **penalties}


def plain_messages(messages) -> list[dict] | None:
    """System, user and assistant messages with text (text parts joined), or None for anything else
    (a picture, a tool call or result: llama-cpp-python's route handles those)."""
    if not isinstance(messages, list) or not messages:
        return None
    plain = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES or message.get("tool_calls"):
            return None
        content = message.get("content")
        if isinstance(content, list):
            if not all(isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
                       for part in content):
                return None
            content = "".join(part["text"] for part in content)
        if content is None and message["role"] == "assistant":
            content = ""
        if not isinstance(content, str):
            return None
        plain.append({"role": message["role"], "content": content})
    return plain


class Reply:
    """One reply's identity and the OpenAI objects that carry it."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.model = model

    def _head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT}

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        return {**self._head("chat.completion.chunk"),
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    def usage_chunk(self, done: dict) -> dict:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": usage(done)}

    def completion(self, text: str, done: dict) -> dict:
        return {**self._head("chat.completion"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                             "finish_reason": finish_reason(done)}],
                "usage": usage(done)}


def finish_reason(done: dict) -> str:
    return FINISH.get(done.get("stop_reason"), "stop")


def usage(done: dict) -> dict:
    prompt, completion = done.get("prompt_tokens", 0), done.get("completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def error_object(message: str, kind: str = "server_error", code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
