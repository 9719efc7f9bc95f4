"""Ember's routes on the host's app: `/ember/chat` (lean NDJSON stream), `/ember/count`, `/ember/info`.

`/ember/chat` answers newline-delimited JSON: one `{"start": ...}` line as soon as the prompt is
rendered and tokenized (the client's template deadline waits for it), then `{"t": text}` batches,
then `{"done": stats}` or `{"error": message}`. Generation shares llama-cpp-python's server lock, so
it never runs beside a `/v1` request on the same model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from engine.runtime.generation import count_prompt_tokens, render_prompt, run_generation


def _check_messages(body) -> str | None:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant") \
                or not isinstance(message.get("content"), str):
            return "each message needs a role (system, user, assistant) and a text content"
    return None


def add_ember_routes(app, llama, renderer, info: dict, get_llama_proxy) -> None:
    model_lock = contextlib.asynccontextmanager(get_llama_proxy)

    async def chat(request: Request):
        body = await request.json()
        problem = _check_messages(body)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def emit(obj: dict) -> None:
            loop.call_soon_threadsafe(lines.put_nowait, (json.dumps(obj) + "\n").encode())

        def work() -> None:
            try:
                run_generation(llama, renderer, body, emit, stop.is_set)
            except Exception as exc:  # reported to the client; the host stays up
                emit({"error": f"{type(exc).__name__}: {exc}"})
            finally:
                loop.call_soon_threadsafe(lines.put_nowait, None)

        async def stream():
            async with model_lock():
                worker = threading.Thread(target=work, name="generate", daemon=True)
                worker.start()
                try:
                    while (line := await lines.get()) is not None:
                        yield line
                finally:
                    stop.set()  # the client went away or the reply ended: free the model for the next one
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(worker.join)

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    async def prompt(request: Request):
        """What the template makes of some messages: the text and the token ids llama.cpp would evaluate.

        For checking a template against its reference rendering (and seeing where a system prompt went).
        """
        body = await request.json()
        problem = _check_messages(body)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        text, tokens, _ = await anyio.to_thread.run_sync(render_prompt, llama, renderer, body["messages"])
        return JSONResponse({"prompt": text, "tokens": tokens,
                             "system_in_user": renderer.folds_system(body["messages"])})

    async def count(request: Request):
        body = await request.json()
        problem = _check_messages(body)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        tokens = await anyio.to_thread.run_sync(count_prompt_tokens, llama, renderer, body["messages"])
        return JSONResponse({"tokens": tokens, "n_ctx": info["n_ctx"]})

    async def describe(request: Request):
        return JSONResponse(info)

    app.add_route("/ember/chat", chat, methods=["POST"])
    app.add_route("/ember/count", count, methods=["POST"])
    app.add_route("/ember/info", describe, methods=["GET"])
    if renderer is not None:  # a host with no renderer (an embedding model) has no prompt to show
        app.add_route("/ember/prompt", prompt, methods=["POST"])
