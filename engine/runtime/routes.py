"""Ember's routes on the host's app: `/ember/count`, `/ember/info`, `/ember/prompt`, `/ember/adapter`,
and on an embedding host `/ember/embed` instead of the chat ones. Ember's own chat stream is not here:
it has a small threaded server of its own on a second port (engine/runtime/stream_server.py), so that
handing text on does not wake this event loop for every batch. It runs the same generation loop
under the same model lock.

`/v1/chat/completions` (OpenAI-compatible, for other programs) runs in the same loop, through the
same `generation_events`: OpenAIChatRoute sits in front of llama-cpp-python's route and answers what
the loop can do (engine/runtime/openai_chat.py), passing the rest (logprobs, tools, JSON replies...)
on to the original.

`/ember/adapter` takes {"path": adapter or null, "scale": S} and sets the LoRA adapter on the live
context (engine/runtime/adapters.py): a new adapter or scale without reloading the model.

`/ember/embed` takes {"texts": [...], "normalize": true} and answers {"vectors": [[...]], "tokens": N}.
It packs texts into llama.cpp batches of about PACK_TOKENS tokens (a text never spans two), under
the same lock, and stops between batches when the client goes away (its cancel).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from pathlib import Path

import anyio
import llama_cpp
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from engine.errors import InvalidInput
from engine.runtime import openai_chat
from engine.runtime.adapters import AdapterError
from engine.runtime.generation import count_prompt_tokens, render_prompt, run_generation

DISCONNECT_POLL_S = 0.05
# Texts are packed into one llama.cpp batch up to this many tokens (a longer text goes alone). Why so
# few: llama.cpp attends over the whole batch and masks the other texts out, so the cost grows with
# the square of the batch. Measured on all-MiniLM-L6-v2 (2 cores): 17-token texts embed at 135
# texts/s packed to 64 tokens, 50 texts/s packed to 512; 62-token texts at 38 vs 20 texts/s
# (1 thread); at 2 threads 64 tokens beat 32 and 128 too.
PACK_TOKENS = 64


def check_messages(body) -> str | None:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant") \
                or not isinstance(message.get("content"), str):
            return "each message needs a role (system, user, assistant) and a text content"
    return None


def _check_texts(body) -> str | None:
    texts = body.get("texts") if isinstance(body, dict) else None
    if not isinstance(texts, list) or not texts:
        return "texts must be a non-empty list of strings"
    wrong = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if wrong is not None:
        return f"texts must be a list of strings; item {wrong} is a {type(texts[wrong]).__name__}"
    if not isinstance(body.get("normalize", True), bool):
        return "normalize must be true or false"
    return None


def tokenize_texts(llama, texts: list[str]) -> tuple[list[list[int]] | None, str | None]:
    """Each text's tokens as the model adds its own special tokens ([CLS] ... [SEP] for a BERT),
    or (None, why) when one does not fit in a batch."""
    limit = llama.n_batch
    token_lists = []
    for i, text in enumerate(texts):
        tokens = llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(tokens) > limit:
            return None, (f"text {i} has {len(tokens)} tokens, but this model embeds at most {limit} at a time; "
                          "split it into shorter pieces")
        token_lists.append(tokens)
    return token_lists, None


def pack(token_lists: list[list[int]], max_seqs: int) -> list[range]:
    """Consecutive texts grouped into batches of at most PACK_TOKENS tokens (or one longer text)."""
    groups, first, size = [], 0, 0
    for index, tokens in enumerate(token_lists):
        if index > first and (size + len(tokens) > PACK_TOKENS or index - first >= max_seqs):
            groups.append(range(first, index))
            first, size = index, 0
        size += len(tokens)
    groups.append(range(first, len(token_lists)))
    return groups


def embed_tokens(llama, token_lists: list[list[int]], normalize: bool, should_stop) -> np.ndarray | None:
    """One vector per token list (float32, n × n_embd); None when `should_stop` said so between batches."""
    n_embd = llama.n_embd()
    ctx, batch = llama._ctx, llama._batch
    vectors = np.empty((len(token_lists), n_embd), dtype=np.float32)
    try:
        for group in pack(token_lists, llama.context_params.n_seq_max):
            if should_stop():
                return None
            batch.reset()
            for seq, index in enumerate(group):
                batch.add_sequence(token_lists[index], seq, True)
            ctx.kv_cache_clear()  # every batch starts afresh: a text never sees another's tokens
            ctx.decode(batch)
            for seq, index in enumerate(group):
                pointer = llama_cpp.llama_get_embeddings_seq(ctx.ctx, seq)
                if not pointer:
                    raise RuntimeError("llama.cpp pooled no embedding (the model has no pooling type)")
                vectors[index] = np.ctypeslib.as_array(pointer, shape=(n_embd,))
    finally:
        batch.reset()
        ctx.kv_cache_clear()
        llama.reset()  # /v1 generation must not think the cache still holds its last prompt
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.where(norms > 0, norms, 1.0)
    return vectors


def add_ember_routes(app, llama, renderer, info: dict, get_llama_proxy, adapter=None) -> None:
    """Chat routes when there is a renderer (a chat host), the embed route on an embedding host;
    `/ember/adapter` when an AdapterSlot is given."""
    model_lock = contextlib.asynccontextmanager(get_llama_proxy)

    async def generation_events(body: dict, stop: threading.Event):
        """run_generation's events as they come, from its own thread under the model lock. Leaving early
        (the client went away) or setting `stop` ends the generation within one token."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def emit(event: dict) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def work() -> None:
            try:
                run_generation(llama, renderer, body, emit, stop.is_set)
            except Exception as exc:  # reported to the client; the host stays up
                emit({"error": f"{type(exc).__name__}: {exc}"})
            finally:
                loop.call_soon_threadsafe(events.put_nowait, None)

        async with model_lock():
            worker = threading.Thread(target=work, name="generate", daemon=True)
            worker.start()
            try:
                while (event := await events.get()) is not None:
                    yield event
            finally:
                stop.set()  # the client went away or the reply ended: free the model for the next one
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(worker.join)

    async def openai_reply(request: dict, body: dict, receive) -> StreamingResponse | JSONResponse:
        """/v1/chat/completions through generation_events: server-sent chunks (a chunk carries what the
        loop handed on in one batch) or one chat.completion."""
        reply = openai_chat.Reply(request.get("model") or Path(info["model"]).name)
        if request.get("stream"):
            with_usage = bool((request.get("stream_options") or {}).get("include_usage"))

            async def chunks():
                yield _sse(reply.chunk({"role": "assistant", "content": ""}))
                async with contextlib.aclosing(generation_events(body, threading.Event())) as events:
                    async for event in events:
                        if "t" in event:
                            yield _sse(reply.chunk({"content": event["t"]}))
                        elif "done" in event:
                            yield _sse(reply.chunk({}, openai_chat.finish_reason(event["done"])))
                            if with_usage:
                                yield _sse(reply.usage_chunk(event["done"]))
                        elif "error" in event:
                            yield _sse(_openai_error(event)[0])
                yield b"data: [DONE]\n\n"

            return StreamingResponse(chunks(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

        stop = threading.Event()
        text: list[str] = []
        done = failed = None

        async def watch_client():
            while (await receive())["type"] != "http.disconnect":
                pass
            stop.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch_client)
            async with contextlib.aclosing(generation_events(body, stop)) as events:
                async for event in events:
                    if "t" in event:
                        text.append(event["t"])
                    elif "done" in event:
                        done = event["done"]
                    elif "error" in event:
                        failed = event
            tasks.cancel_scope.cancel()
        if failed is not None:
            error, status = _openai_error(failed)
            return JSONResponse(error, status_code=status)
        return JSONResponse(reply.completion("".join(text), done or {}))

    async def prompt(request: Request):
        """What the template makes of some messages: the text and the token ids llama.cpp would evaluate.

        For checking a template against its reference rendering (and seeing where a system prompt went).
        """
        body = await request.json()
        problem = check_messages(body)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        text, tokens, _ = await anyio.to_thread.run_sync(render_prompt, llama, renderer, body["messages"])
        return JSONResponse({"prompt": text, "tokens": tokens,
                             "system_in_user": renderer.folds_system(body["messages"])})

    async def count(request: Request):
        body = await request.json()
        problem = check_messages(body)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        tokens = await anyio.to_thread.run_sync(count_prompt_tokens, llama, renderer, body["messages"])
        return JSONResponse({"tokens": tokens, "n_ctx": info["n_ctx"]})

    async def embed(request: Request):
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the request body is not JSON"}, status_code=400)
        problem = _check_texts(body)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        token_lists, problem = await anyio.to_thread.run_sync(tokenize_texts, llama, body["texts"])
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        stop = threading.Event()

        async def watch_client():
            while not stop.is_set():
                if await request.is_disconnected():
                    stop.set()
                await anyio.sleep(DISCONNECT_POLL_S)

        async with model_lock(), anyio.create_task_group() as tasks:
            tasks.start_soon(watch_client)
            try:
                vectors = await anyio.to_thread.run_sync(
                    embed_tokens, llama, token_lists, body.get("normalize", True), stop.is_set)
            except Exception as exc:  # reported to the client; the host stays up
                return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500)
            finally:
                stop.set()
        if vectors is None:  # the client left; nobody reads this
            return JSONResponse({"error": "cancelled"}, status_code=499)
        return JSONResponse({"vectors": vectors.tolist(), "tokens": sum(map(len, token_lists))})

    async def describe(request: Request):
        return JSONResponse(info)

    async def set_adapter(request: Request):
        """{"path": str or null, "scale": float}: the adapter on the live context; answers the new state."""
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the request body is not JSON"}, status_code=400)
        path, scale = (body.get("path"), body.get("scale", 1.0)) if isinstance(body, dict) else (None, None)
        if (path is not None and not isinstance(path, str)) or isinstance(scale, bool) \
                or not isinstance(scale, (int, float)) or not -4.0 <= scale <= 4.0:
            return JSONResponse({"error": "give a path (or null) and a scale from -4 to 4"}, status_code=400)
        async with model_lock():  # never in the middle of a reply
            try:
                state = await anyio.to_thread.run_sync(adapter.set, path, float(scale))
            except AdapterError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        info.update(state)
        return JSONResponse(state)

    if renderer is not None:
        app.add_route("/ember/count", count, methods=["POST"])
        app.add_middleware(OpenAIChatRoute, reply=openai_reply, info=info)
    if info.get("role") == "embedding":
        app.add_route("/ember/embed", embed, methods=["POST"])
    app.add_route("/ember/info", describe, methods=["GET"])
    if adapter is not None:
        app.add_route("/ember/adapter", set_adapter, methods=["POST"])
    if renderer is not None:  # a host with no renderer (an embedding model) has no prompt to show
        app.add_route("/ember/prompt", prompt, methods=["POST"])


class OpenAIChatRoute:
    """ASGI middleware in front of llama-cpp-python's /v1/chat/completions: what Ember's loop can do it
    answers itself (openai_chat.translate), the rest goes on to the original route, body and all."""

    PATH = "/v1/chat/completions"

    def __init__(self, app, reply, info: dict) -> None:
        self.app = app
        self.reply = reply
        self.info = info

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.PATH:
            await self.app(scope, receive, send)
            return
        raw = await _read_body(receive)
        try:
            request = json.loads(raw)
            body = openai_chat.translate(request, self.info["n_ctx"]) if isinstance(request, dict) else None
        except ValueError:  # not JSON: the original route says so in its own words
            body = None
        except InvalidInput as exc:
            response = JSONResponse(openai_chat.error_object(exc.message, "invalid_request_error"), status_code=400)
            await response(scope, receive, send)
            return
        if body is None:
            await self.app(scope, _replayed(raw, receive), send)
            return
        response = await self.reply(request, body, receive)
        await response(scope, receive, send)


async def _read_body(receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts)
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


def _replayed(raw: bytes, receive):
    """A receive that gives the already-read body once more, then the real one's messages."""
    given = False

    async def again():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return again


def _sse(value: dict) -> bytes:
    return b"data: " + json.dumps(value).encode() + b"\n\n"


def _openai_error(event: dict) -> tuple[dict, int]:
    """An error event of the loop as OpenAI's error object, with its HTTP status."""
    if event.get("kind") == "context":
        return openai_chat.error_object(event["error"], "invalid_request_error", "context_length_exceeded"), 400
    return openai_chat.error_object(event["error"]), 500
