"""The runtime host: a child process that runs llama.cpp for one GGUF and serves it on 127.0.0.1.

    python -m engine.runtime.host_main --model PATH [--ctx N] [--gpu-layers N] [--threads N] ...

It is llama-cpp-python's own server app (`/v1/*`, OpenAI-compatible, for other programs) with routes
of Ember's added on the same model (`/ember/count`, `/ember/info`, ...: token counts for the context
budget, what was loaded), and, on a second port, Ember's lean chat stream for its own client
(`/ember/chat`, stream_server.py: threads, not the event loop, hand its text on). With `--embedding`
it loads an embedding model instead (no chat template, no stream port) and serves `/ember/embed` and
`/ember/info`. Protocol with the supervisor:
- the bearer token comes in the environment (EMBER_HOST_TOKEN), never on the command line;
- it binds the port (0: a free one) and emits ONE event on stdout (child_protocol.emit) when ready,
  `{"type": "ready", "port", "stream_port", "load_s", "template", "n_ctx", ...}`, or
  `{"type": "error", "error": ...}` before exiting;
- it exits when its stdin closes, so a killed app leaves no host behind (`ember serve` keeps its
  host by keeping that stdin open).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import time

from engine.runtime.child_protocol import emit, exit_when_parent_goes
from engine.runtime.protocol import TOKEN_ENV, bearer_matches


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ember-host")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--flash-attn", action="store_true")
    parser.add_argument("--lora", default=None)
    parser.add_argument("--lora-scale", type=float, default=1.0)
    parser.add_argument("--chat-format", default=None, help="gguf (default), none, or a built-in format")
    parser.add_argument("--embedding", action="store_true", help="load an embedding model: /ember/embed, no chat")
    return parser.parse_args(argv)


class BearerAuth:
    """ASGI middleware: every HTTP request must carry `Authorization: Bearer <token>` (bearer_matches)."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if not bearer_matches(dict(scope["headers"]).get(b"authorization", b""), self.token):
                body = b'{"error": {"message": "missing or wrong bearer token", "type": "auth"}}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class NotAnEmbeddingModel(Exception):
    """The GGUF declares no pooling: llama.cpp would give one vector per token, not one per text."""


POOLING_NAMES = {1: "mean", 2: "cls", 3: "last"}  # llama.cpp's pooling types that make a text vector


def embedding_limits(model_path: str, requested_ctx: int) -> tuple[int, str]:
    """(context, pooling) for an embedding model, from its header, before llama.cpp loads it.

    The context is capped at the trained one: a BERT has position embeddings for only that many
    tokens. A model without a sentence pooling (a chat model, a reranker) is refused here, readably."""
    from engine.gguf.reader import read_header

    meta = read_header(model_path).metadata
    arch = str(meta.get("general.architecture", "unknown"))
    pooling = meta.get(f"{arch}.pooling_type")
    if pooling not in POOLING_NAMES:
        kind = "a reranker" if pooling == 4 else f"a {arch} model without a pooling type (a chat model?)"
        raise NotAnEmbeddingModel(
            f"{os.path.basename(model_path)} is not an embedding model: it is {kind}. "
            "Pick an embedding model (a GGUF with a mean, CLS or last-token pooling type).")
    trained = meta.get(f"{arch}.context_length")
    ctx = min(requested_ctx, int(trained)) if isinstance(trained, int) and trained > 0 else requested_ctx
    return ctx, POOLING_NAMES[pooling]


def build_app(args: argparse.Namespace, token: str):
    """Load the model into llama-cpp-python's server app and add Ember's routes. Returns (asgi app, info,
    the chat stream's server or None on an embedding host)."""
    from llama_cpp.server import app as server_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    from engine.runtime import native_loop, templates
    from engine.runtime.adapters import AdapterSlot
    from engine.runtime.routes import add_ember_routes
    from engine.runtime.stream_server import StreamServer

    templates.install_lenient_formatter()
    ctx, pooling = embedding_limits(args.model, args.ctx) if args.embedding else (args.ctx, None)
    # An embedding model sees a whole text in one batch (non-causal attention needs all its tokens at once).
    batch = {"n_batch": ctx, "n_ubatch": ctx, "embedding": True} if args.embedding else {}
    model_settings = ModelSettings(
        model=args.model, n_ctx=ctx, n_gpu_layers=args.gpu_layers, n_threads=args.threads,
        n_threads_batch=args.threads, flash_attn=args.flash_attn,
        logits_all=False, verbose=False, chat_format=None, **batch,
    )
    server_settings = ServerSettings(host=args.host, port=args.port, api_key=token)
    app = server_app.create_app(server_settings=server_settings, model_settings=[model_settings])
    llama = server_app._llama_proxy()
    adapter = AdapterSlot(llama)  # set on the live context (not at load): the page swaps it without a reload
    if args.lora:
        adapter.set(args.lora, args.lora_scale)
    if args.embedding:
        info = {
            "model": args.model, "role": "embedding", "n_ctx": llama.n_ctx(), "n_embd": llama.n_embd(),
            "pooling": pooling, "gpu_layers": args.gpu_layers, "threads": args.threads, "template": "none",
            **adapter.state(), "pid": os.getpid(),
        }
        add_ember_routes(app, llama, None, info, server_app.get_llama_proxy)
        return BearerAuth(app, token), info, None
    native_loop.install(llama)  # the /v1 routes generate through the same native loop as Ember's route
    renderer = templates.choose_renderer(llama, args.chat_format)
    if renderer.kind.startswith("fallback:"):
        llama.chat_format = renderer.kind.split(":", 1)[1]  # /v1/chat uses the same fallback
    info = {
        "model": args.model, "n_ctx": llama.n_ctx(), "gpu_layers": args.gpu_layers, "threads": args.threads,
        "flash_attn": args.flash_attn, "system_in_user": renderer.system_in_user, "system_notice": renderer.system_notice,
        "template": renderer.kind, "template_hash": renderer.template_hash, "notice": renderer.notice,
        **adapter.state(), "pid": os.getpid(), "role": "chat",
    }
    add_ember_routes(app, llama, renderer, info, server_app.get_llama_proxy, adapter)
    stream = StreamServer(llama, renderer, token, contextlib.asynccontextmanager(server_app.get_llama_proxy),
                          args.host)
    info["stream_port"] = stream.port
    return BearerAuth(app, token), info, stream


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    token = os.environ.get(TOKEN_ENV)
    if not token:
        emit({"type": "error", "error": f"{TOKEN_ENV} is not set"})
        return 2
    exit_when_parent_goes()
    started = time.perf_counter()
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        emit({"type": "error", "error": f"could not listen on {args.host}:{args.port}: {exc}"})
        return 1
    sock.listen(64)
    try:
        app, info, stream = build_app(args, token)
    except NotAnEmbeddingModel as exc:  # said as it is: the user picked the wrong kind of model
        emit({"type": "error", "error": str(exc)})
        return 1
    except Exception as exc:  # a bad file, out of memory, an unknown architecture: the supervisor reads stderr
        emit({"type": "error", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    info.update(port=sock.getsockname()[1], load_s=round(time.perf_counter() - started, 3))
    emit({"type": "ready", **info})

    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
    server = uvicorn.Server(config)

    async def serve() -> None:
        if stream is not None:  # its replies take the model lock on this event loop
            stream.start(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
